"""Run a gold set against Chancery's public API and write RUN_DIR/run.json with the reports.

For every question the harness asks `/v1/search` (retrieval metrics, in the chosen mode) and
`/v1/ask` (answer, citations, abstention), and reads each cited page back from
`/v1/documents/{id}/pages/{n}` to check that the quote stands on it.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from tqdm import tqdm

from eval.gold import GoldQuestion, load_gold
from eval.metrics import (
    abstention_metrics,
    aggregate,
    aggregate_by,
    citation_metrics,
    latency_summary,
    retrieval_metrics,
    rouge_l,
    token_f1,
)
from eval.run_model import (
    STAGES,
    Abstention,
    Aggregates,
    Citation,
    IndexInfo,
    LatencySummary,
    RetrievedHit,
    RunMeta,
    RunRecord,
    RunRow,
    Timings,
    first_problem,
    write_run,
)
from eval.targets import Target, TargetError

RETRIEVAL_METRICS = (
    "hit@1",
    "hit@3",
    "hit@5",
    "hit@10",
    "mrr@10",
    "recall@5",
    "recall@10",
    "ndcg@10",
    "pages@5",
)
CITATION_METRICS = ("citation_precision", "citation_recall", "citation_validity")
ANSWER_METRICS = ("token_f1", "rouge_l", "answer_similarity")
ALL_METRICS = RETRIEVAL_METRICS + CITATION_METRICS + ANSWER_METRICS
_RETRIEVAL_TIMINGS = ("embed_ms", "dense_ms", "lexical_ms", "sentences_ms", "fuse_ms")

Similarity = Callable[[Sequence[str], Sequence[str]], list[float]]
"""Cosine similarity of each answer to its gold answer."""
_Answer = TypeVar("_Answer", bound=BaseModel)


@dataclass(frozen=True)
class RunOptions:
    mode: str = "hybrid"
    k: int = 10
    answer_k: int = 8
    progress: bool = True
    answerer: str | None = None
    """The answerer to ask for (`extractive`, `generative`); None: the service's default."""


class _Searched(BaseModel):
    """The part of a `/v1/search` answer the harness reads."""

    hits: tuple[RetrievedHit, ...]


class _Answered(BaseModel):
    """The part of a `/v1/ask` answer the harness reads."""

    answer: str
    abstained: bool
    citations: tuple[Citation, ...]
    timings_ms: dict[str, float] = {}
    # Services from before the generative answerer sent neither.
    answerer: str = "extractive"
    fallback: str | None = None


def evaluate_gold(
    gold_path: Path,
    target: Target,
    out_dir: Path,
    similarity: Similarity | None,
    options: RunOptions | None = None,
) -> RunRecord:
    """Ask every question of the gold set, score the answers, and write `out_dir/run.json`."""
    options = options or RunOptions()
    questions = load_gold(gold_path)
    meta = RunMeta(
        gold=str(gold_path),
        gold_sha256=hashlib.sha256(gold_path.read_bytes()).hexdigest(),
        mode=options.mode,
        answerer=options.answerer,
        target=target.name,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        code_version=code_version(),
        # Read first: a service whose answers the harness cannot read fails before the run.
        index=_read(IndexInfo, target.index_info(), "/v1/index"),
    )
    rows = [
        _evaluate(question, target, options)
        for question in tqdm(questions, desc="eval", unit=" q", disable=not options.progress)
    ]
    if similarity is not None:
        rows = _with_similarity(rows, similarity)
    record = RunRecord(meta=meta, rows=tuple(rows), aggregates=summarize(rows))
    write_run(record, out_dir)
    return record


def run_gold(
    gold_path: Path,
    target: Target,
    out_dir: Path,
    similarity: Similarity | None,
    options: RunOptions | None = None,
) -> dict[str, Any]:
    """`evaluate_gold`, its record as plain data (NaN where a metric does not apply).

    Kept for callers written before run.json had a model; new code should use `evaluate_gold`.
    """
    return evaluate_gold(gold_path, target, out_dir, similarity, options).model_dump()


def _read(model: type[_Answer], payload: object, route: str) -> _Answer:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise TargetError(
            f"{route} answered in a shape the harness cannot read ({first_problem(exc)})"
        ) from exc


def _evaluate(question: GoldQuestion, target: Target, options: RunOptions) -> RunRow:
    started = time.perf_counter()
    searched = _read(
        _Searched, target.search(question.question, options.k, options.mode), "/v1/search"
    )
    search_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    answered = _read(
        _Answered, target.ask(question.question, options.answer_k, options.answerer), "/v1/ask"
    )
    round_trip_ms = (time.perf_counter() - started) * 1000
    valid = tuple(
        (text := target.page_text(c.doc, c.page)) is not None and c.quote in text
        for c in answered.citations
    )
    # The metrics take plain mappings, as the gold set and the API give them.
    evidence = [item.model_dump() for item in question.evidence]
    metrics: dict[str, float] = {}
    if question.answerable:
        metrics.update(retrieval_metrics([h.model_dump() for h in searched.hits], evidence))
        citations = [c.model_dump() for c in answered.citations]
        metrics.update(citation_metrics(citations, evidence, valid))
        text = "" if answered.abstained else answered.answer
        metrics["token_f1"] = token_f1(text, question.answer)
        metrics["rouge_l"] = rouge_l(text, question.answer)
    server = answered.timings_ms
    return RunRow(
        id=question.id,
        question=question.question,
        type=question.type,
        answerable=question.answerable,
        reworded=question.reworded,
        gold_answer=question.answer,
        evidence=tuple(question.evidence),
        hits=searched.hits,
        answer=answered.answer,
        abstained=answered.abstained,
        citations=answered.citations,
        citation_valid=valid,
        answered_by=answered.answerer,
        fallback=answered.fallback,
        timings_ms=Timings(
            retrieval=round(sum(server.get(key, 0.0) for key in _RETRIEVAL_TIMINGS), 3),
            answering=server.get("answer_ms", 0.0),
            total=server.get("total_ms", round_trip_ms),
            round_trip=round(round_trip_ms, 3),
            search_round_trip=round(search_ms, 3),
        ),
        metrics=metrics,
    )


def _with_similarity(rows: Sequence[RunRow], similarity: Similarity) -> list[RunRow]:
    answerable = [row for row in rows if row.answerable]
    scores = similarity([r.answer for r in answerable], [r.gold_answer for r in answerable])
    by_id = dict(zip((row.id for row in answerable), scores, strict=True))
    return [
        row.model_copy(
            update={
                "metrics": {
                    **row.metrics,
                    "answer_similarity": 0.0 if row.abstained else by_id[row.id],
                }
            }
        )
        if row.id in by_id
        else row
        for row in rows
    ]


def summarize(rows: Sequence[RunRow]) -> Aggregates:
    # The aggregation functions take plain mappings, as the per-question metrics do.
    plain = [
        row.model_dump(include={"id", "type", "answerable", "abstained", "metrics"}) for row in rows
    ]
    answerable = [row for row in plain if row["answerable"]]
    # answer_similarity is absent when a run was made without the model.
    names = [m for m in ALL_METRICS if any(m in r["metrics"] for r in answerable)]
    return Aggregates(
        overall=aggregate(answerable, names),
        by_type={
            str(group): intervals
            for group, intervals in aggregate_by(answerable, names, "type").items()
        },
        abstention=Abstention.model_validate(abstention_metrics(plain)),
        latency={
            stage: LatencySummary.model_validate(
                latency_summary(row.timings_ms.of(stage) for row in rows)
            )
            for stage in STAGES
        },
    )


def code_version() -> str:
    version = metadata.version("chancery")
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version}+{commit}" if commit else version
