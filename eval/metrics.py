"""Evaluation metrics: pure per-question functions, and aggregation with bootstrap intervals.

Per-question functions take plain mappings (as they come out of the gold set and the public API)
and return plain floats, so a report can show every question's values, not just the mean.
"Undefined" is NaN - a precision with nothing cited, a recall with nothing to recall - and
aggregation drops NaNs instead of counting them as zeros.

Pages are 1-based and inclusive, as a PDF viewer shows them. A hit covers the pages
`page_start..page_end` of its doc; it is relevant when it covers at least one evidence page.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from rouge_score import rouge_scorer

PageRef = tuple[str, int]

HIT_KS = (1, 3, 5, 10)
RECALL_KS = (5, 10)
RANK_DEPTH = 10  # mrr and ndcg look at the top 10 only
WIDTH_K = 5  # pages@5

NAN = float("nan")

# "[1]", "[2, 3]", "[4-5]": the answerer's citation markers; they are not part of the answer text.
_CITATION_MARKER = re.compile(r"\[\s*\d+(?:\s*[,\-–]\s*\d+)*\s*\]")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")


@dataclass(frozen=True)
class Interval:
    """A mean with its bootstrap confidence interval over `n` non-NaN values."""

    mean: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, float | int | None]:
        # NaN is not valid JSON; None (null) is what a report reader expects for "undefined".
        def clean(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {
            "mean": clean(self.mean),
            "low": clean(self.low),
            "high": clean(self.high),
            "n": self.n,
        }

    def format(self) -> str:
        """'0.81 [0.74, 0.87]', or 'n/a' when the metric is undefined for every question."""
        if math.isnan(self.mean):
            return "n/a"
        return f"{self.mean:.2f} [{self.low:.2f}, {self.high:.2f}]"


# --- retrieval -----------------------------------------------------------------------------------


def evidence_pages(evidence: Iterable[Mapping[str, Any]]) -> set[PageRef]:
    """The distinct (doc, page) pairs of an evidence list; gold sets may repeat a page."""
    return {(str(e["doc"]), int(e["page"])) for e in evidence}


def _hit_pages(hit: Mapping[str, Any]) -> set[PageRef]:
    doc, start, end = str(hit["doc"]), int(hit["page_start"]), int(hit["page_end"])
    if start < 1 or end < start:
        raise ValueError(f"hit on {doc!r} has an invalid page span {start}..{end}")
    return {(doc, page) for page in range(start, end + 1)}


def retrieval_metrics(
    hits: Sequence[Mapping[str, Any]], evidence: Iterable[Mapping[str, Any]]
) -> dict[str, float]:
    """hit@k, mrr@10, recall@k, ndcg@10 and pages@5 for one question; hits are best first.

    With no evidence (an unanswerable question) every quality metric is NaN: there is nothing to
    find, so the question says nothing about retrieval quality. pages@5 is still reported.
    """
    gold = evidence_pages(evidence)
    covered = [_hit_pages(hit) for hit in hits[: max(RANK_DEPTH, WIDTH_K)]]
    width = float(len(set().union(*covered[:WIDTH_K])))

    if not gold:
        quality = {f"hit@{k}": NAN for k in HIT_KS}
        quality |= {f"recall@{k}": NAN for k in RECALL_KS}
        return quality | {f"mrr@{RANK_DEPTH}": NAN, f"ndcg@{RANK_DEPTH}": NAN, "pages@5": width}

    found = [pages & gold for pages in covered[:RANK_DEPTH]]
    first = next((rank for rank, f in enumerate(found, start=1) if f), None)

    metrics: dict[str, float] = {}
    for k in HIT_KS:
        metrics[f"hit@{k}"] = 1.0 if first is not None and first <= k else 0.0
    metrics[f"mrr@{RANK_DEPTH}"] = 1.0 / first if first is not None else 0.0
    for k in RECALL_KS:
        metrics[f"recall@{k}"] = len(set().union(*found[:k])) / len(gold)

    # Binary gain, but only for a hit that covers an evidence page no earlier hit covered:
    # overlapping chunks often land on the same page twice, and counting each repeat would push
    # nDCG above 1. Without repeated pages this is plain binary gain per hit (as in ranx).
    seen: set[PageRef] = set()
    dcg = 0.0
    for rank, f in enumerate(found, start=1):
        if f - seen:
            dcg += 1.0 / math.log2(rank + 1)
        seen |= f
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(gold), RANK_DEPTH) + 1))
    metrics[f"ndcg@{RANK_DEPTH}"] = dcg / ideal
    metrics["pages@5"] = width
    return metrics


# --- citations -----------------------------------------------------------------------------------


def citation_metrics(
    citations: Sequence[Mapping[str, Any]],
    evidence: Iterable[Mapping[str, Any]],
    valid: Sequence[bool],
) -> dict[str, float]:
    """Precision, recall and validity of an answer's citations against the evidence pages.

    `valid[i]` says whether citation i's quote was found verbatim on its page. Precision and
    validity are NaN with no citations (nothing to judge); recall is then 0, or NaN when there is
    no evidence either.
    """
    if len(valid) != len(citations):
        raise ValueError(f"{len(citations)} citations but {len(valid)} validity flags")
    gold = evidence_pages(evidence)
    cited = [(str(c["doc"]), int(c["page"])) for c in citations]

    if cited:
        precision = sum(ref in gold for ref in cited) / len(cited)
        validity = sum(bool(v) for v in valid) / len(valid)
    else:
        precision = validity = NAN
    recall = len(gold & set(cited)) / len(gold) if gold else NAN
    return {
        "citation_precision": precision,
        "citation_recall": recall,
        "citation_validity": validity,
    }


# --- answer text ---------------------------------------------------------------------------------


def strip_citation_markers(text: str) -> str:
    return _CITATION_MARKER.sub(" ", text)


def _is_punctuation(char: str) -> bool:
    # SQuAD strips ASCII punctuation only; reports are full of curly quotes and en dashes.
    return char in string.punctuation or unicodedata.category(char).startswith("P")


def _squad_tokens(text: str) -> list[str]:
    text = "".join(ch for ch in text.lower() if not _is_punctuation(ch))
    return _ARTICLES.sub(" ", text).split()


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1; citation markers are removed from the prediction first.

    As in SQuAD 2.0, when either side has no tokens the score is 1 if both are empty, else 0.
    """
    pred = _squad_tokens(strip_citation_markers(prediction))
    ref = _squad_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@cache
def _rouge_l_scorer() -> rouge_scorer.RougeScorer:
    # Built once on first use (not on import): it loads a Porter stemmer.
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (Google's rouge-score, Porter stemming); markers stripped from prediction.

    rouge-score's tokenizer keeps only [a-z0-9] runs, so accented letters split words; and it
    scores 0 when either side is empty.
    """
    score = _rouge_l_scorer().score(reference, strip_citation_markers(prediction))["rougeL"]
    return float(score.fmeasure)


# --- aggregation ---------------------------------------------------------------------------------


def bootstrap_interval(
    values: Iterable[float], resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> Interval:
    """Percentile bootstrap interval of the mean; NaNs are dropped. Deterministic for a seed."""
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence}")
    data = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    n = int(data.size)
    if n == 0:
        return Interval(NAN, NAN, NAN, 0)
    mean = float(data.mean())
    if n == 1:
        return Interval(mean, mean, mean, 1)

    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = (float(q) for q in np.quantile(means, [tail, 1.0 - tail]))
    return Interval(mean, low, high, n)


def _check_names(rows: Sequence[Mapping[str, Any]], names: list[str]) -> None:
    missing = [name for name in names if not any(name in row["metrics"] for row in rows)]
    if rows and missing:
        # No row has it at all: a misspelt name, not an undefined value.
        raise KeyError(f"no row has the metric(s) {missing}")


def _metric_values(rows: Sequence[Mapping[str, Any]], name: str) -> list[float]:
    # A row without the metric counts as undefined (e.g. citation metrics of an abstention).
    return [float(row["metrics"].get(name, NAN)) for row in rows]


def aggregate(
    rows: Sequence[Mapping[str, Any]],
    metric_names: Iterable[str],
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Interval]:
    """{metric: Interval} over all rows; row["metrics"] holds each question's values."""
    names = list(metric_names)
    _check_names(rows, names)
    return {
        name: bootstrap_interval(_metric_values(rows, name), resamples, seed, confidence)
        for name in names
    }


def aggregate_by(
    rows: Sequence[Mapping[str, Any]],
    metric_names: Iterable[str],
    key: str,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[Hashable, dict[str, Interval]]:
    """aggregate() per value of row[key] (e.g. question type), groups in order of first sight."""
    names = list(metric_names)
    _check_names(rows, names)
    groups: dict[Hashable, list[Mapping[str, Any]]] = {}
    for row in rows:
        if key not in row:
            raise KeyError(f"row {row.get('id', '?')!r} has no {key!r} to group by")
        groups.setdefault(row[key], []).append(row)
    # Groups may legitimately lack a metric everywhere (n=0), so they skip the name check.
    return {
        group: {
            name: bootstrap_interval(_metric_values(members, name), resamples, seed, confidence)
            for name in names
        }
        for group, members in groups.items()
    }


def abstention_metrics(rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """How well the service abstains: rows carry bool "answerable" and bool "abstained".

    abstain_rate_unanswerable: share of unanswerable questions it declined (higher is better).
    false_abstain_rate: share of answerable questions it declined (lower is better).
    """
    counts = Counter((bool(row["answerable"]), bool(row["abstained"])) for row in rows)
    answerable = counts[True, True] + counts[True, False]
    unanswerable = counts[False, True] + counts[False, False]
    return {
        "abstain_rate_unanswerable": counts[False, True] / unanswerable if unanswerable else NAN,
        "false_abstain_rate": counts[True, True] / answerable if answerable else NAN,
        "n_answerable": answerable,
        "n_unanswerable": unanswerable,
        "n_abstained_answerable": counts[True, True],
        "n_abstained_unanswerable": counts[False, True],
    }


def latency_summary(values_ms: Iterable[float]) -> dict[str, float]:
    """p50, p95 (linear interpolation) and mean in milliseconds, and n; NaN when empty."""
    data = np.asarray([v for v in values_ms if not math.isnan(v)], dtype=float)
    if data.size == 0:
        return {"p50": NAN, "p95": NAN, "mean": NAN, "n": 0}
    p50, p95 = (float(p) for p in np.percentile(data, [50, 95]))
    return {"p50": p50, "p95": p95, "mean": float(data.mean()), "n": int(data.size)}
