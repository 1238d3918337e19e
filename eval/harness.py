"""Run a gold set against Chancery's public API and write RUN_DIR/run.json with the reports.

For every question the harness asks `/v1/search` (retrieval metrics, in the chosen mode) and
`/v1/ask` (answer, citations, abstention), and reads each cited page back from
`/v1/documents/{id}/pages/{n}` to check that the quote stands on it.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

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
from eval.targets import Target

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
STAGES = ("retrieval", "answering", "total")
_RETRIEVAL_TIMINGS = ("embed_ms", "dense_ms", "lexical_ms", "fuse_ms")

Similarity = Callable[[Sequence[str], Sequence[str]], list[float]]
"""Cosine similarity of each answer to its gold answer."""


@dataclass(frozen=True)
class RunOptions:
    mode: str = "hybrid"
    k: int = 10
    answer_k: int = 8
    progress: bool = True


def run_gold(
    gold_path: Path,
    target: Target,
    out_dir: Path,
    similarity: Similarity | None,
    options: RunOptions | None = None,
) -> dict[str, Any]:
    options = options or RunOptions()
    questions = load_gold(gold_path)
    rows = []
    for question in tqdm(questions, desc="eval", unit=" q", disable=not options.progress):
        rows.append(_evaluate(question, target, options))
    if similarity is not None:
        answered = [r for r in rows if r["answerable"]]
        scores = similarity([r["answer"] for r in answered], [r["gold_answer"] for r in answered])
        for row, score in zip(answered, scores, strict=True):
            row["metrics"]["answer_similarity"] = 0.0 if row["abstained"] else score
    run = {
        "meta": {
            "gold": str(gold_path),
            "gold_sha256": hashlib.sha256(gold_path.read_bytes()).hexdigest(),
            "mode": options.mode,
            "target": target.name,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "code_version": code_version(),
            "index": target.index_info(),
        },
        "rows": rows,
        "aggregates": summarize(rows),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "run.json").write_text(json.dumps(_json_safe(run), indent=1, ensure_ascii=False))
    return run


def _evaluate(question: GoldQuestion, target: Target, options: RunOptions) -> dict[str, Any]:
    started = time.perf_counter()
    hits = target.search(question.question, options.k, options.mode)["hits"]
    search_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    answer = target.ask(question.question, options.answer_k)
    round_trip_ms = (time.perf_counter() - started) * 1000
    citations = answer["citations"]
    valid = [
        (text := target.page_text(c["doc"], c["page"])) is not None and c["quote"] in text
        for c in citations
    ]
    evidence = [item.model_dump() for item in question.evidence]
    metrics: dict[str, float] = {}
    if question.answerable:
        metrics.update(retrieval_metrics(hits, evidence))
        metrics.update(citation_metrics(citations, evidence, valid))
        text = "" if answer["abstained"] else answer["answer"]
        metrics["token_f1"] = token_f1(text, question.answer)
        metrics["rouge_l"] = rouge_l(text, question.answer)
    server = answer.get("timings_ms", {})
    return {
        "id": question.id,
        "question": question.question,
        "type": question.type,
        "answerable": question.answerable,
        "reworded": question.reworded,
        "gold_answer": question.answer,
        "evidence": evidence,
        "hits": hits,
        "answer": answer["answer"],
        "abstained": answer["abstained"],
        "citations": citations,
        "citation_valid": valid,
        "timings_ms": {
            "retrieval": round(sum(float(server.get(key, 0.0)) for key in _RETRIEVAL_TIMINGS), 3),
            "answering": float(server.get("answer_ms", 0.0)),
            "total": float(server.get("total_ms", round_trip_ms)),
            "round_trip": round(round_trip_ms, 3),
            "search_round_trip": round(search_ms, 3),
        },
        "metrics": metrics,
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answerable = [r for r in rows if r["answerable"]]
    # answer_similarity is absent when a run was made without the model.
    names = [m for m in ALL_METRICS if any(m in r["metrics"] for r in answerable)]
    return {
        "overall": {m: i.to_dict() for m, i in aggregate(answerable, names).items()},
        "by_type": {
            group: {m: i.to_dict() for m, i in intervals.items()}
            for group, intervals in aggregate_by(answerable, names, "type").items()
        },
        "abstention": abstention_metrics(rows),
        "latency": {
            stage: latency_summary([r["timings_ms"][stage] for r in rows]) for stage in STAGES
        },
    }


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


def _json_safe(value: Any) -> Any:
    """NaN (an undefined metric, e.g. precision with no citations) becomes null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value
