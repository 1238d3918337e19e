"""run.json: one evaluation run, as the harness writes it and reports and comparisons read it.

The file records what the service said (hits, citations, timings) and what the metrics made of
it, never the metric code, so a report can be rebuilt for an old run after the metrics changed.
A metric that does not apply to a question (a precision with nothing cited) is NaN in memory and
null in the file: JSON has no NaN, and pydantic writes NaN as null.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from eval.gold import Evidence
from eval.metrics import Interval

RUN_FILE = "run.json"
Stage = Literal["retrieval", "answering", "total"]
STAGES: tuple[Stage, ...] = ("retrieval", "answering", "total")


class RunFormatError(ValueError):
    """run.json is missing or does not have the shape the harness writes."""


def _null_is_nan(value: object) -> object:
    return math.nan if value is None else value


def _nulls_are_nan(value: object) -> object:
    if isinstance(value, Mapping):
        return {key: _null_is_nan(item) for key, item in value.items()}
    return value


Measure = Annotated[float, BeforeValidator(_null_is_nan)]
"""A value that may be undefined: NaN, written as null."""
MetricInterval = Annotated[Interval, BeforeValidator(_nulls_are_nan)]
"""A metric's mean and interval; all NaN (null) when no question had a value."""


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class _ServiceRecord(BaseModel):
    # What the service sent, kept whole: fields the API adds later stay in the file.
    model_config = ConfigDict(frozen=True, extra="allow")


class RetrievedHit(_ServiceRecord):
    """A passage `/v1/search` returned."""

    chunk_id: str
    doc: str
    page_start: int
    page_end: int
    heading: str
    text: str
    score: float

    def covers(self, evidence: Evidence) -> bool:
        return self.doc == evidence.doc and self.page_start <= evidence.page <= self.page_end


class Citation(_ServiceRecord):
    """A citation `/v1/ask` returned: marker [n], page and verbatim quote."""

    n: int
    doc: str
    title: str
    page: int
    page_label: str | None
    quote: str
    chunk_id: str
    score: float


class Timings(_Record):
    """Milliseconds: per stage as the service measured them, and round trips as the harness did."""

    retrieval: Measure
    answering: Measure
    total: Measure
    round_trip: Measure = math.nan
    search_round_trip: Measure = math.nan

    def of(self, stage: Stage) -> float:
        value: float = getattr(self, stage)
        return value


class RunRow(_Record):
    """One gold question: what it asked and expected, what came back, and its metric values."""

    id: str
    question: str
    type: str
    answerable: bool
    reworded: bool = False
    gold_answer: str
    evidence: tuple[Evidence, ...]
    hits: tuple[RetrievedHit, ...]
    answer: str
    abstained: bool
    citations: tuple[Citation, ...]
    citation_valid: tuple[bool, ...]
    """Whether each citation's quote stands verbatim on its page."""
    answered_by: str = "extractive"
    """The answerer that wrote the answer."""
    fallback: str | None = None
    """Why the answerer asked for did not, when another stood in."""
    timings_ms: Timings
    metrics: dict[str, Measure]

    def metric(self, name: str) -> float:
        """The row's value for `name`; NaN where the metric does not apply (null or absent)."""
        return self.metrics.get(name, math.nan)


class Abstention(_Record):
    """How well the service declined: see `eval.metrics.abstention_metrics`."""

    abstain_rate_unanswerable: Measure
    false_abstain_rate: Measure
    n_answerable: int
    n_unanswerable: int
    n_abstained_answerable: int
    n_abstained_unanswerable: int


class LatencySummary(_Record):
    p50: Measure
    p95: Measure
    mean: Measure
    n: int


class Aggregates(_Record):
    overall: dict[str, MetricInterval]
    """Over the answerable questions, metric by metric."""
    by_type: dict[str, dict[str, MetricInterval]]
    abstention: Abstention
    latency: dict[str, LatencySummary]
    """By stage (see `STAGES`)."""


class IndexedDocument(_ServiceRecord):
    file_name: str
    pages: int
    chunks: int


class IndexInfo(_ServiceRecord):
    """What `/v1/index` said about the index the run was scored against (nothing without one)."""

    documents: tuple[IndexedDocument, ...] = ()


class RunMeta(_Record):
    gold: str
    gold_sha256: str
    mode: str
    answerer: str | None = None
    """The answerer the run asked for; None: the service's default."""
    target: str
    created_at: str
    code_version: str
    index: IndexInfo


class RunRecord(_Record):
    """The whole of run.json."""

    meta: RunMeta
    rows: tuple[RunRow, ...]
    aggregates: Aggregates


def write_run(record: RunRecord, run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / RUN_FILE
    path.write_text(record.model_dump_json(indent=1), encoding="utf-8")
    return path


def load_run(run_dir: Path) -> RunRecord:
    """Read `run_dir/run.json`; raise RunFormatError saying what is wrong with it."""
    path = run_dir / RUN_FILE
    try:
        text = path.read_bytes()
    except FileNotFoundError as exc:
        raise RunFormatError(f"{path} does not exist; run the evaluation harness first") from exc
    try:
        return RunRecord.model_validate_json(text)
    except ValidationError as exc:
        what = "is not valid JSON" if _is_json_error(exc) else "does not have the run format"
        raise RunFormatError(f"{path} {what} ({first_problem(exc)}); re-run the harness") from exc


def first_problem(error: ValidationError) -> str:
    """The first thing pydantic found wrong, on one line, with where it is."""
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def _is_json_error(error: ValidationError) -> bool:
    return error.errors(include_url=False)[0]["type"] == "json_invalid"
