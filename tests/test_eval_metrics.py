"""Evaluation metrics on hand-computed cases, and retrieval metrics cross-checked against ranx."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest

from eval.metrics import (
    Interval,
    abstention_metrics,
    aggregate,
    aggregate_by,
    bootstrap_interval,
    citation_metrics,
    latency_summary,
    retrieval_metrics,
    rouge_l,
    token_f1,
)


def hit(doc: str, start: int, end: int | None = None) -> dict[str, Any]:
    return {"doc": doc, "page_start": start, "page_end": start if end is None else end}


def ev(doc: str, page: int) -> dict[str, Any]:
    return {"doc": doc, "page": page}


def log2_discount(rank: int) -> float:
    return 1.0 / math.log2(rank + 1)


# --- retrieval -----------------------------------------------------------------------------------


def test_retrieval_span_hit_covering_the_evidence_page_at_rank_3() -> None:
    # Rank 1: the right page of the wrong doc; rank 2: the right doc, pages before it.
    hits = [hit("b.pdf", 3), hit("a.pdf", 1, 2), hit("a.pdf", 2, 4)]
    m = retrieval_metrics(hits, [ev("a.pdf", 3)])
    assert (m["hit@1"], m["hit@3"], m["hit@5"], m["hit@10"]) == (0.0, 1.0, 1.0, 1.0)
    assert m["mrr@10"] == pytest.approx(1 / 3)
    assert m["recall@5"] == m["recall@10"] == 1.0
    assert m["ndcg@10"] == pytest.approx(log2_discount(3))  # 0.5
    assert m["pages@5"] == 5  # b3, a1, a2, a3, a4


def test_retrieval_duplicate_evidence_counts_each_page_once() -> None:
    evidence = [ev("a.pdf", 3), ev("a.pdf", 3), ev("a.pdf", 5)]
    hits = [hit("a.pdf", 5), *(hit("x.pdf", p) for p in range(1, 5)), hit("a.pdf", 3)]
    m = retrieval_metrics(hits, evidence)
    assert m["hit@1"] == 1.0
    assert m["mrr@10"] == 1.0
    assert m["recall@5"] == 0.5
    assert m["recall@10"] == 1.0
    ideal = log2_discount(1) + log2_discount(2)  # two distinct pages, not three
    assert m["ndcg@10"] == pytest.approx((log2_discount(1) + log2_discount(6)) / ideal)


def test_retrieval_no_relevant_hits() -> None:
    hits = [hit("a.pdf", 1), hit("a.pdf", 2, 3), hit("b.pdf", 9)]
    m = retrieval_metrics(hits, [ev("a.pdf", 7)])
    for name in ("hit@1", "hit@3", "hit@5", "hit@10", "mrr@10", "recall@5", "recall@10", "ndcg@10"):
        assert m[name] == 0.0, name
    assert m["pages@5"] == 4


def test_retrieval_multi_page_evidence_with_span_hits() -> None:
    evidence = [ev("a.pdf", 4), ev("a.pdf", 5), ev("a.pdf", 6)]
    hits = [hit("a.pdf", 1), hit("a.pdf", 4, 5), hit("b.pdf", 4), hit("a.pdf", 6)]
    m = retrieval_metrics(hits, evidence)
    assert (m["hit@1"], m["hit@3"]) == (0.0, 1.0)
    assert m["mrr@10"] == 0.5
    assert m["recall@5"] == 1.0
    # One gain per relevant hit: the span covering two evidence pages counts once.
    dcg = log2_discount(2) + log2_discount(4)
    ideal = log2_discount(1) + log2_discount(2) + log2_discount(3)
    assert m["ndcg@10"] == pytest.approx(dcg / ideal)


def test_retrieval_partial_recall_of_multi_page_evidence() -> None:
    m = retrieval_metrics([hit("a.pdf", 4)], [ev("a.pdf", 4), ev("a.pdf", 9), ev("b.pdf", 4)])
    assert m["recall@5"] == pytest.approx(1 / 3)
    assert m["ndcg@10"] == pytest.approx(1 / (1 + log2_discount(2) + log2_discount(3)))


def test_retrieval_repeated_page_does_not_push_ndcg_above_one() -> None:
    m = retrieval_metrics([hit("a.pdf", 1), hit("a.pdf", 1, 2)], [ev("a.pdf", 1)])
    assert m["ndcg@10"] == 1.0
    assert m["pages@5"] == 2


def test_retrieval_looks_only_at_the_top_10() -> None:
    hits = [hit("x.pdf", p) for p in range(1, 11)] + [hit("a.pdf", 1)]
    m = retrieval_metrics(hits, [ev("a.pdf", 1)])
    assert m["hit@10"] == m["mrr@10"] == m["recall@10"] == m["ndcg@10"] == 0.0
    assert m["pages@5"] == 5


def test_retrieval_without_evidence_is_undefined_but_reports_width() -> None:
    m = retrieval_metrics([hit("a.pdf", 1, 3)], [])
    assert all(math.isnan(v) for k, v in m.items() if k != "pages@5")
    assert m["pages@5"] == 3


def test_retrieval_without_hits() -> None:
    m = retrieval_metrics([], [ev("a.pdf", 1)])
    assert m["hit@10"] == m["mrr@10"] == m["ndcg@10"] == m["pages@5"] == 0.0


def test_retrieval_rejects_a_backwards_span() -> None:
    with pytest.raises(ValueError, match="page span"):
        retrieval_metrics([hit("a.pdf", 5, 4)], [ev("a.pdf", 4)])


# --- citations -----------------------------------------------------------------------------------


def test_citations_precision_recall_validity() -> None:
    citations = [ev("a.pdf", 3), ev("a.pdf", 3), ev("b.pdf", 1)]
    evidence = [ev("a.pdf", 3), ev("a.pdf", 5), ev("a.pdf", 5)]
    m = citation_metrics(citations, evidence, [True, False, True])
    assert m["citation_precision"] == pytest.approx(2 / 3)
    assert m["citation_recall"] == 0.5
    assert m["citation_validity"] == pytest.approx(2 / 3)


def test_citations_none_given() -> None:
    m = citation_metrics([], [ev("a.pdf", 3)], [])
    assert math.isnan(m["citation_precision"])
    assert math.isnan(m["citation_validity"])
    assert m["citation_recall"] == 0.0


def test_citations_recall_is_undefined_without_evidence() -> None:
    m = citation_metrics([ev("a.pdf", 3)], [], [True])
    assert m["citation_precision"] == 0.0
    assert math.isnan(m["citation_recall"])
    assert m["citation_validity"] == 1.0


def test_citations_need_one_validity_flag_each() -> None:
    with pytest.raises(ValueError, match="validity"):
        citation_metrics([ev("a.pdf", 3)], [ev("a.pdf", 3)], [])


# --- answer text ---------------------------------------------------------------------------------


def test_token_f1_strips_markers_articles_and_punctuation() -> None:
    # pred: cat sat; ref: cat sat on mat -> P=1, R=1/2
    assert token_f1("The cat sat [1].", "a cat sat on the mat") == pytest.approx(2 / 3)


def test_token_f1_counts_a_multiset_overlap() -> None:
    # common = min(2,1) + min(1,2) = 2 of 3 tokens on each side
    assert token_f1("cat cat dog", "cat dog dog") == pytest.approx(2 / 3)


def test_token_f1_handles_unicode_punctuation_and_grouped_markers() -> None:
    assert token_f1("“Growth” — 5% [2, 3]", "growth 5") == 1.0


def test_token_f1_empty_sides() -> None:
    assert token_f1("", "") == 1.0
    assert token_f1("the [1]", "") == 1.0
    assert token_f1("", "answer") == 0.0
    assert token_f1("[1]", "answer") == 0.0
    assert token_f1("something", "") == 0.0


def test_rouge_l_is_the_lcs_f_measure() -> None:
    # LCS "the cat on the mat" = 5 of 6 predicted and 5 of 5 reference tokens.
    assert rouge_l("the cat sat on the mat [1]", "the cat on the mat") == pytest.approx(10 / 11)


def test_rouge_l_stems_and_strips_markers() -> None:
    assert rouge_l("running dogs [12]", "run dog") == 1.0
    assert rouge_l("unrelated", "run dog") == 0.0


# --- bootstrap and aggregation -------------------------------------------------------------------


def test_bootstrap_edge_cases() -> None:
    empty = bootstrap_interval([float("nan")])
    assert empty.n == 0
    assert all(math.isnan(x) for x in (empty.mean, empty.low, empty.high))
    assert bootstrap_interval([0.4]) == Interval(0.4, 0.4, 0.4, 1)
    assert bootstrap_interval([1.0, float("nan"), 3.0]).mean == 2.0
    assert bootstrap_interval([1.0, float("nan"), 3.0]).n == 2
    constant = bootstrap_interval([0.1] * 7)
    assert constant.low <= constant.mean <= constant.high
    assert constant.high - constant.low < 1e-12


def test_bootstrap_two_values_spans_both() -> None:
    # Resampled means are 0, 0.5, 1 with chances 1/4, 1/2, 1/4: the 95% interval is [0, 1].
    interval = bootstrap_interval([0.0, 1.0], resamples=4000)
    assert (interval.low, interval.mean, interval.high) == (0.0, 0.5, 1.0)


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    values = list(np.random.default_rng(7).random(30))
    assert bootstrap_interval(values, seed=3) == bootstrap_interval(values, seed=3)
    assert bootstrap_interval(values, seed=3) != bootstrap_interval(values, seed=4)


def test_bootstrap_contains_the_mean_and_narrows_with_more_data() -> None:
    rng = np.random.default_rng(11)
    small = bootstrap_interval(list(rng.random(20)))
    large = bootstrap_interval(list(rng.random(2000)))
    for interval in (small, large):
        assert interval.low < interval.mean < interval.high
    assert large.high - large.low < (small.high - small.low) / 3


def test_bootstrap_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_interval([1.0, 2.0], confidence=1.0)
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_interval([1.0, 2.0], resamples=0)


ROWS: list[dict[str, Any]] = [
    {"id": "q1", "type": "factual", "metrics": {"hit@1": 1.0, "citation_precision": 1.0}},
    {"id": "q2", "type": "factual", "metrics": {"hit@1": 0.0, "citation_precision": 0.5}},
    {"id": "q3", "type": "numeric", "metrics": {"hit@1": 1.0, "citation_precision": math.nan}},
    {"id": "q4", "type": "numeric", "metrics": {"hit@1": 1.0}},
]


def test_aggregate_drops_undefined_values() -> None:
    result = aggregate(ROWS, ["hit@1", "citation_precision"])
    assert (result["hit@1"].mean, result["hit@1"].n) == (0.75, 4)
    assert (result["citation_precision"].mean, result["citation_precision"].n) == (0.75, 2)


def test_aggregate_by_groups_in_order_of_first_sight() -> None:
    result = aggregate_by(ROWS, ["hit@1", "citation_precision"], "type")
    assert list(result) == ["factual", "numeric"]
    assert result["factual"]["hit@1"].mean == 0.5
    assert result["numeric"]["hit@1"] == Interval(1.0, 1.0, 1.0, 2)
    assert result["numeric"]["citation_precision"].n == 0


def test_aggregate_rejects_a_metric_no_row_has() -> None:
    with pytest.raises(KeyError, match="hit@2"):
        aggregate(ROWS, ["hit@2"])
    with pytest.raises(KeyError, match="kind"):
        aggregate_by(ROWS, ["hit@1"], "kind")


def test_interval_to_dict_turns_nan_into_none() -> None:
    assert Interval(0.5, 0.25, 0.75, 8).to_dict() == {
        "mean": 0.5,
        "low": 0.25,
        "high": 0.75,
        "n": 8,
    }
    assert Interval(math.nan, math.nan, math.nan, 0).to_dict() == {
        "mean": None,
        "low": None,
        "high": None,
        "n": 0,
    }


def test_abstention_metrics() -> None:
    pairs = [(True, True), (True, False), (True, False), (False, True), (False, False)]
    m = abstention_metrics([{"answerable": a, "abstained": b} for a, b in pairs])
    assert m["false_abstain_rate"] == pytest.approx(1 / 3)
    assert m["abstain_rate_unanswerable"] == 0.5
    assert (m["n_answerable"], m["n_unanswerable"]) == (3, 2)
    assert (m["n_abstained_answerable"], m["n_abstained_unanswerable"]) == (1, 1)
    empty = abstention_metrics([])
    assert math.isnan(empty["false_abstain_rate"])
    assert math.isnan(empty["abstain_rate_unanswerable"])


def test_latency_summary() -> None:
    # p95 by linear interpolation: position 0.95 * 4 = 3.8, between 40 and 50.
    assert latency_summary([50, 10, 40, 20, 30]) == {"p50": 30, "p95": 48, "mean": 30, "n": 5}
    empty = latency_summary([])
    assert empty["n"] == 0
    assert math.isnan(empty["p50"])


# --- cross-check against ranx --------------------------------------------------------------------

RANX_METRICS = {
    "hit@1": "hit_rate@1",
    "hit@3": "hit_rate@3",
    "hit@5": "hit_rate@5",
    "hit@10": "hit_rate@10",
    "mrr@10": "mrr@10",
    "recall@10": "recall@10",
    "ndcg@10": "ndcg@10",
}


def random_queries(
    seed: int, count: int = 20
) -> list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """(hits, evidence) pairs: one-page hits, no page twice in a run, so a page is a ranx doc."""
    rng = random.Random(seed)
    pages = [(doc, page) for doc in ("a.pdf", "b.pdf", "c.pdf") for page in range(1, 16)]
    queries = []
    for _ in range(count):
        gold = rng.sample(pages, rng.randint(1, 12))  # sometimes more than 10 relevant pages
        evidence = [ev(*ref) for ref in gold + rng.sample(gold, 1)]  # one repeated entry
        # Mix evidence into random pages so relevant hits land at varied ranks, sometimes none.
        pool = list(dict.fromkeys(rng.sample(gold, rng.randint(0, len(gold))) + pages))
        pool = pool[: len(gold) + 10]
        ranked = rng.sample(pool, rng.randint(1, min(15, len(pool))))
        queries.append(([hit(doc, page) for doc, page in ranked], evidence))
    return queries


@pytest.mark.filterwarnings("ignore:unsafe cast")  # a numba warning inside ranx's hit_rate
def test_retrieval_metrics_agree_with_ranx() -> None:
    from ranx import Qrels, Run, evaluate  # imported here: ranx compiles with numba on first use

    queries = random_queries(seed=2024)
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    ours: dict[str, dict[str, float]] = {}
    for i, (hits, evidence) in enumerate(queries):
        qid = f"q{i:02d}"
        qrels[qid] = {f"{e['doc']}#{e['page']}": 1 for e in evidence}
        # Strictly decreasing scores, so ranx ranks the hits exactly in our order.
        run[qid] = {
            f"{h['doc']}#{h['page_start']}": float(len(hits) - r) for r, h in enumerate(hits)
        }
        assert len(run[qid]) == len(hits)
        ours[qid] = retrieval_metrics(hits, evidence)

    ranx_run = Run.from_dict(run)
    evaluate(Qrels.from_dict(qrels), ranx_run, list(RANX_METRICS.values()), return_mean=False)
    checked = 0
    for name, ranx_name in RANX_METRICS.items():
        for qid in qrels:
            assert ours[qid][name] == pytest.approx(ranx_run.scores[ranx_name][qid], abs=1e-6), (
                qid,
                name,
            )
            checked += 1
    assert checked == len(RANX_METRICS) * 20
    # The random runs must exercise both outcomes, or the agreement says little.
    assert {ours[qid]["hit@10"] for qid in ours} == {0.0, 1.0}
    assert any(0.0 < ours[qid]["ndcg@10"] < 1.0 for qid in ours)
