"""Reports and run comparison on a small synthetic run.json, shaped as the harness writes it."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from eval.compare import compare_runs, format_comparison
from eval.report import write_reports

TYPES = ("factual", "why", "list")
WORST_ID = "q-07"
SCRIPT_QUESTION = "Does <script>alert('x')</script> & co. appear?"


def _row(i: int) -> dict[str, Any]:
    """Row i of 12: ten answerable across three types, the last two unanswerable."""
    qid = f"q-{i:02d}"
    answerable = i < 10
    row: dict[str, Any] = {
        "id": qid,
        "question": SCRIPT_QUESTION if i == 3 else f"Question number {i}?",
        "type": TYPES[i % 3] if answerable else "unanswerable",
        "answerable": answerable,
        "reworded": False,
        "gold_answer": f"gold {i}",
        "evidence": [{"doc": "r.pdf", "page": i + 1, "quote": "q"}] if answerable else [],
        "hits": [
            {
                "chunk_id": f"c{i}-{h}",
                "doc": "r.pdf",
                "page_start": 20 + h,
                "page_end": 21 + h,
                "heading": f"Heading {h}",
                "text": f"retrieved passage {h} for {qid} " + "x" * 300,
                "score": 1.0 - h / 10,
            }
            for h in range(10)
        ],
        "answer": f"answer {i} [1]",
        "abstained": not answerable,
        "citations": [],
        "citation_valid": [],
        "timings_ms": {"retrieval": 5.0 + i, "answering": 2.0 + i / 2, "total": 8.0 + 1.5 * i},
        "metrics": {"token_f1": 0.1 * (i % 5), "rouge_l": 0.2, "answer_similarity": 0.5},
    }
    if answerable:
        # Reciprocal ranks 1, 1/2, 1/3, ... except WORST_ID, which found nothing, and one row
        # with a null citation precision (JSON null for NaN).
        mrr = 0.0 if qid == WORST_ID else 1.0 / (1 + i % 4)
        row["metrics"].update(
            {
                "hit@1": float(mrr == 1.0),
                "hit@3": float(mrr >= 1 / 3),
                "hit@5": float(mrr > 0),
                "hit@10": float(mrr > 0),
                "mrr@10": mrr,
                "recall@5": float(mrr > 0),
                "recall@10": float(mrr > 0),
                "ndcg@10": mrr,
                "pages@5": 4,
                "citation_precision": None if i == 4 else 0.5,
                "citation_recall": 0.5,
                "citation_validity": 1.0,
            }
        )
    return row


def _interval(values: list[float]) -> dict[str, Any]:
    mean = sum(values) / len(values)
    # ±0.1, kept inside [0, 1] for rates; counts such as pages@5 exceed 1.
    high = min(mean + 0.1, max(mean, 1.0))
    return {"mean": mean, "low": max(mean - 0.1, 0.0), "high": high, "n": len(values)}


def _aggregate(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    names = list(dict.fromkeys(name for r in rows for name in r["metrics"]))
    out = {}
    for name in names:
        values = [r["metrics"][name] for r in rows if r["metrics"].get(name) is not None]
        if values:
            out[name] = _interval(values)
    return out


def _latency(rows: list[dict[str, Any]], stage: str) -> dict[str, float]:
    values = sorted(r["timings_ms"][stage] for r in rows)
    return {
        "p50": values[len(values) // 2],
        "p95": values[-1],
        "mean": sum(values) / len(values),
        "n": len(values),
    }


def _run(rows: list[dict[str, Any]]) -> dict[str, Any]:
    types = list(dict.fromkeys(r["type"] for r in rows))
    return {
        "meta": {
            "gold": "eval/gold/test.jsonl",
            "gold_sha256": "ab" * 32,
            "mode": "hybrid",
            "target": "in-process",
            "created_at": "2025-01-01T00:00:00Z",
            "code_version": "deadbeef",
            "index": {
                "documents": [{"file_name": "r.pdf", "title": "R", "pages": 40, "chunks": 99}]
            },
        },
        "rows": rows,
        "aggregates": {
            "overall": _aggregate([r for r in rows if r["answerable"]]),
            "by_type": {t: _aggregate([r for r in rows if r["type"] == t]) for t in types},
            "abstention": {
                "abstain_rate_unanswerable": 1.0,
                "false_abstain_rate": 0.0,
                "n_answerable": 10,
                "n_unanswerable": 2,
                "n_abstained_answerable": 0,
                "n_abstained_unanswerable": 2,
            },
            "latency": {s: _latency(rows, s) for s in ("retrieval", "answering", "total")},
        },
    }


def _write(directory: Path, run: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    # allow_nan=False: the harness writes NaN as null, so the fixture must not smuggle in NaN.
    (directory / "run.json").write_text(json.dumps(run, allow_nan=False), encoding="utf-8")
    return directory


@pytest.fixture
def run_data() -> dict[str, Any]:
    return _run([_row(i) for i in range(12)])


@pytest.fixture
def run_dir(tmp_path: Path, run_data: dict[str, Any]) -> Path:
    return _write(tmp_path / "run-a", run_data)


def test_both_reports_and_plots_are_written(run_dir: Path) -> None:
    md_path, html_path = write_reports(run_dir)

    assert md_path == run_dir / "report.md" and md_path.stat().st_size > 0
    assert html_path == run_dir / "report.html" and html_path.stat().st_size > 0
    pngs = sorted(run_dir.glob("*.png"))
    assert len(pngs) >= 3
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_markdown_starts_with_meta_then_summary_table_with_intervals(
    run_dir: Path, run_data: dict[str, Any]
) -> None:
    md = write_reports(run_dir)[0].read_text(encoding="utf-8")

    hit5 = run_data["aggregates"]["overall"]["hit@5"]
    expected = f"| hit@5 | {hit5['mean']:.2f} [{hit5['low']:.2f}, {hit5['high']:.2f}] | 10 |"
    assert expected in md
    assert re.search(r"\| mrr@10 \| \d\.\d\d \[\d\.\d\d, \d\.\d\d\] \| 10 \|", md)
    # Meta first, then summary, abstention, latency, plots, by type, worst questions.
    order = [
        "hybrid",
        "## Overall metrics",
        "## Abstention",
        "## Latency",
        "![",
        "## By question type",
        "## Worst",
    ]
    positions = [md.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert "r.pdf (40 pages, 99 chunks)" in md
    # A null citation precision is skipped, not counted as zero: 9 values, not 10.
    assert "| citation_precision | 0.50 [0.40, 0.60] | 9 |" in md


def test_worst_questions_list_the_lowest_mrr_first(run_dir: Path) -> None:
    md = write_reports(run_dir)[0].read_text(encoding="utf-8")
    worst = md[md.index("## Worst") :]

    headings = re.findall(r"^### \d+\. (q-\d\d)", worst, flags=re.MULTILINE)
    assert headings[0] == WORST_ID
    assert len(headings) == 10  # answerable only: the two unanswerable rows never appear
    assert "q-10" not in headings and "q-11" not in headings
    first = worst[worst.index(f"### 1. {WORST_ID}") : worst.index("### 2.")]
    assert "r.pdf p. 8" in first  # its evidence page
    assert "r.pdf pp. 20–21 — Heading 0 — retrieved passage 0 for q-07" in first
    assert "Heading 2" in first and "Heading 3" not in first  # top 3 hits only
    assert "x" * 200 not in first  # passages are cut to a preview
    assert "answer 7 [1]" in first


def test_html_is_self_contained_and_escaped(run_dir: Path) -> None:
    page = write_reports(run_dir)[1].read_text(encoding="utf-8")

    assert len(re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+"', page)) >= 3
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co." in page
    assert 'src="hit' not in page and ".png" not in page.replace("image/png", "")


def test_identical_runs_have_zero_deltas_and_no_changed_questions(
    tmp_path: Path, run_data: dict[str, Any]
) -> None:
    a = _write(tmp_path / "a", run_data)
    b = _write(tmp_path / "b", copy.deepcopy(run_data))

    comparison = compare_runs(a, b)

    assert comparison.shared == 12 and comparison.only_a == comparison.only_b == 0
    assert {m.name for m in comparison.metrics} >= {"hit@5", "mrr@10", "token_f1"}
    for m in comparison.metrics:
        assert (m.delta, m.low, m.high) == (0.0, 0.0, 0.0), m
        assert not m.excludes_zero
    assert all(s.delta == 0 for s in (*comparison.abstention, *comparison.latency_p50))
    assert comparison.better == () and comparison.worse == ()
    text = format_comparison(comparison)
    assert "| mrr@10 | " in text and "+0.00 [+0.00, +0.00] | 10 |" in text
    assert not re.search(r"\* \| \d+ \|$", text, flags=re.MULTILINE)  # nothing marked


def test_a_question_fixed_in_b_is_listed_as_better(
    tmp_path: Path, run_data: dict[str, Any]
) -> None:
    improved = copy.deepcopy(run_data)
    row = next(r for r in improved["rows"] if r["id"] == WORST_ID)
    row["metrics"].update({"mrr@10": 1.0, "ndcg@10": 1.0, "hit@1": 1.0})
    improved["aggregates"]["latency"]["total"]["p50"] += 3.0
    a = _write(tmp_path / "a", run_data)
    b = _write(tmp_path / "b", improved)

    comparison = compare_runs(a, b)

    assert [c.id for c in comparison.better] == [WORST_ID]
    assert comparison.worse == ()
    mrr = next(m for m in comparison.metrics if m.name == "mrr@10")
    assert mrr.delta == pytest.approx(0.1)  # 0 → 1 on one question of ten
    assert mrr.high > 0 and mrr.low >= 0
    hit5 = next(m for m in comparison.metrics if m.name == "hit@5")
    assert hit5.delta == 0.0
    total = next(s for s in comparison.latency_p50 if s.name == "total")
    assert total.delta == pytest.approx(3.0)
    text = format_comparison(comparison)
    assert "| mrr@10 | 0.54 | 0.64 | +0.10 [" in text
    better = text[text.index("got better") : text.index("got worse")]
    assert f"| {WORST_ID} | Question number 7? | 0.00 → 1.00 |" in better
    assert "None." in text[text.index("got worse") :]
    assert not math.isnan(mrr.low)
