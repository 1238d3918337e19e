"""Compare two evaluation runs: what changed, whether it is beyond noise, and for which questions.

Deltas are paired: only questions both runs share (by id) count, and each metric's interval is
a bootstrap over the per-question differences, which is far tighter than comparing two
independent intervals because both runs face the same hard and easy questions. The means shown
for A and B are over the same pairs, so the delta is exactly B − A; they can differ slightly
from each run's headline mean when question sets differ or a metric is null in only one run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.report import fmt
from eval.run_model import LatencySummary, RunRecord, RunRow, load_run

RESAMPLES = 1000
SEED = 0
CHANGED_LIMIT = 10
_EPSILON = 1e-9
"""Differences below this are float noise from re-serialising, not a change."""


@dataclass(frozen=True)
class MetricDelta:
    name: str
    a_mean: float
    b_mean: float
    delta: float
    low: float
    high: float
    n: int
    """Questions both runs share with a value for this metric in each."""

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


@dataclass(frozen=True)
class ScalarDelta:
    name: str
    a: float
    b: float

    @property
    def delta(self) -> float:
        return self.b - self.a


@dataclass(frozen=True)
class QuestionChange:
    id: str
    question: str
    mrr_a: float
    mrr_b: float
    f1_a: float
    f1_b: float

    def key(self) -> tuple[float, float]:
        """mrr@10 change first, token_f1 change breaking ties; a missing value is no change."""
        return (_change(self.mrr_a, self.mrr_b), _change(self.f1_a, self.f1_b))


@dataclass(frozen=True)
class Comparison:
    run_a: Path
    run_b: Path
    shared: int
    only_a: int
    only_b: int
    metrics: tuple[MetricDelta, ...]
    abstention: tuple[ScalarDelta, ...]
    latency_p50: tuple[ScalarDelta, ...]
    better: tuple[QuestionChange, ...]
    worse: tuple[QuestionChange, ...]


def _change(a: float, b: float) -> float:
    d = b - a
    return 0.0 if math.isnan(d) or abs(d) < _EPSILON else d


def paired_delta(name: str, pairs: Sequence[tuple[RunRow, RunRow]]) -> MetricDelta:
    """Mean of B − A over pairs where both have a value, with a seeded bootstrap 95% interval."""
    values = np.array([(a.metric(name), b.metric(name)) for a, b in pairs], dtype=float)
    values = values.reshape(-1, 2)
    values = values[~np.isnan(values).any(axis=1)]
    n = len(values)
    if n == 0:
        return MetricDelta(name, math.nan, math.nan, math.nan, math.nan, math.nan, 0)
    diffs = values[:, 1] - values[:, 0]
    rng = np.random.default_rng(SEED)
    means = diffs[rng.integers(0, n, size=(RESAMPLES, n))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return MetricDelta(
        name=name,
        a_mean=float(values[:, 0].mean()),
        b_mean=float(values[:, 1].mean()),
        delta=float(diffs.mean()),
        low=float(low),
        high=float(high),
        n=n,
    )


def _union(a: Iterable[str], b: Iterable[str]) -> list[str]:
    return list(dict.fromkeys([*a, *b]))


def compare_runs(run_a: Path, run_b: Path) -> Comparison:
    """Compare run B against run A (both run directories holding run.json)."""
    return compare(load_run(run_a), load_run(run_b), run_a, run_b)


def compare(a: RunRecord, b: RunRecord, run_a: Path, run_b: Path) -> Comparison:
    """Compare the run B (read from `run_b`) against the run A (read from `run_a`)."""
    rows_b = {r.id: r for r in b.rows}
    pairs = [(r, rows_b[r.id]) for r in a.rows if r.id in rows_b]
    ids_a = {r.id for r in a.rows}

    changes = [
        QuestionChange(
            ra.id,
            ra.question,
            ra.metric("mrr@10"),
            rb.metric("mrr@10"),
            ra.metric("token_f1"),
            rb.metric("token_f1"),
        )
        for ra, rb in pairs
    ]
    better = sorted((c for c in changes if c.key() > (0.0, 0.0)), key=lambda c: c.key())
    worse = sorted((c for c in changes if c.key() < (0.0, 0.0)), key=lambda c: c.key())

    abstention_a = a.aggregates.abstention.model_dump()
    abstention_b = b.aggregates.abstention.model_dump()
    latency_a, latency_b = a.aggregates.latency, b.aggregates.latency
    return Comparison(
        run_a=run_a,
        run_b=run_b,
        shared=len(pairs),
        only_a=len(ids_a - rows_b.keys()),
        only_b=len(rows_b.keys() - ids_a),
        metrics=tuple(
            paired_delta(m, pairs) for m in _union(a.aggregates.overall, b.aggregates.overall)
        ),
        abstention=tuple(
            ScalarDelta(name, float(abstention_a[name]), float(abstention_b[name]))
            for name in abstention_a
        ),
        latency_p50=tuple(
            ScalarDelta(stage, _p50(latency_a.get(stage)), _p50(latency_b.get(stage)))
            for stage in _union(latency_a, latency_b)
        ),
        better=tuple(reversed(better))[:CHANGED_LIMIT],
        worse=tuple(worse[:CHANGED_LIMIT]),
    )


def _p50(stats: LatencySummary | None) -> float:
    return math.nan if stats is None else stats.p50


def _signed(value: float, digits: int = 2) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.{digits}f}"


def _plain(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3g}"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _changes_table(title: str, changes: Sequence[QuestionChange]) -> list[str]:
    lines = [f"## {title}", ""]
    if not changes:
        return [*lines, "None.", ""]
    lines += ["| id | question | mrr@10 A→B | token_f1 A→B |", "|---|---|---|---|"]
    lines += [
        f"| {c.id} | {_cell(c.question)} | {fmt(c.mrr_a)} → {fmt(c.mrr_b)} "
        f"| {fmt(c.f1_a)} → {fmt(c.f1_b)} |"
        for c in changes
    ]
    return [*lines, ""]


def format_comparison(c: Comparison) -> str:
    """The comparison as Markdown: metric deltas, abstention, latency, changed questions."""
    lines = [
        "# Run comparison",
        "",
        f"**A:** {c.run_a}  ",
        f"**B:** {c.run_b}",
        "",
        f"{c.shared} questions in both runs ({c.only_a} only in A, {c.only_b} only in B). "
        f"Means are over the questions both runs share and measure; Δ = B − A with a paired "
        f"bootstrap 95% interval ({RESAMPLES} resamples, seed {SEED}); * marks an interval that "
        f"excludes 0.",
        "",
        "## Metrics",
        "",
        "| metric | A | B | Δ [95% interval] | n |",
        "|---|---|---|---|---|",
    ]
    for m in c.metrics:
        mark = " *" if m.excludes_zero else ""
        interval = (
            "n/a" if m.n == 0 else f"{_signed(m.delta)} [{_signed(m.low)}, {_signed(m.high)}]"
        )
        lines.append(f"| {m.name} | {fmt(m.a_mean)} | {fmt(m.b_mean)} | {interval}{mark} | {m.n} |")
    lines += ["", "## Abstention", "", "| measure | A | B | Δ |", "|---|---|---|---|"]
    lines += [
        f"| {s.name} | {_plain(s.a)} | {_plain(s.b)} | {_signed(s.delta, 3)} |"
        for s in c.abstention
    ]
    lines += ["", "## Latency p50 (ms)", "", "| stage | A | B | Δ |", "|---|---|---|---|"]
    lines += [
        f"| {s.name} | {fmt(s.a, 1)} | {fmt(s.b, 1)} | {_signed(s.delta, 1)} |"
        for s in c.latency_p50
    ]
    lines.append("")
    lines += _changes_table("Questions that got better (by mrr@10, then token_f1)", c.better)
    lines += _changes_table("Questions that got worse (by mrr@10, then token_f1)", c.worse)
    return "\n".join(lines)
