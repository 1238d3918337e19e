"""run.json: the harness writes what the reports read, in the shape earlier runs have.

A stand-in service (httpx's MockTransport) answers the public API, so the harness runs in
milliseconds and every value it records is known.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from eval.harness import RunOptions, evaluate_gold, run_gold
from eval.report import write_reports
from eval.run_model import RUN_FILE, RunFormatError, load_run
from eval.targets import Target, TargetError

GOLD = [
    {
        "id": "q-1",
        "question": "Is gas storage full?",
        "answer": "Gas storage is full.",
        "answerable": True,
        "type": "factual",
        "evidence": [{"doc": "r.pdf", "page": 2, "quote": "Gas storage is full."}],
    },
    {
        "id": "q-2",
        "question": "Who chairs the council?",
        "answer": "The Prime Minister.",
        "answerable": True,
        "type": "who",
        "evidence": [{"doc": "r.pdf", "page": 3, "quote": "The Prime Minister chairs it."}],
        "reworded": True,
    },
    {
        "id": "q-3",
        "question": "What is the capital of Mars?",
        "answer": "",
        "answerable": False,
        "type": "unanswerable",
        "evidence": [],
    },
]
PAGES = {2: "Gas storage is full. Imports grow.", 3: "The Prime Minister chairs it."}
ROW_FIELDS = {
    "id",
    "question",
    "type",
    "answerable",
    "reworded",
    "gold_answer",
    "evidence",
    "hits",
    "answer",
    "abstained",
    "citations",
    "citation_valid",
    "answered_by",
    "fallback",
    "timings_ms",
    "metrics",
}


def _hit(page: int) -> dict[str, Any]:
    return {
        "chunk_id": f"c{page}",
        "doc": "r.pdf",
        "page_start": page,
        "page_end": page,
        "heading": "Energy",
        "text": PAGES.get(page, "Foreword."),
        "score": 1.0 / page,
    }


def _ask(question: str) -> dict[str, Any]:
    answered = question == GOLD[0]["question"]
    citation = {
        "n": 1,
        "doc": "r.pdf",
        "title": "R",
        "page": 2,
        "page_label": None,
        "quote": "Gas storage is full.",
        "chunk_id": "c2",
        "score": 0.9,
    }
    misquoted = citation | {"n": 2, "quote": "Gas storage is empty."}
    return {
        "answer": "Gas storage is full [1][2]." if answered else "",
        "abstained": not answered,
        "citations": [citation, misquoted] if answered else [],
        "passages": [],
        "index_version": "v-1",
        "timings_ms": {
            "embed_ms": 1.0,
            "dense_ms": 2.0,
            "lexical_ms": 3.0,
            "fuse_ms": 4.0,
            "answer_ms": 5.0,
            "total_ms": 20.0,
        },
    }


def _service(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/v1/index":
        document = {"doc_id": "r.pdf", "file_name": "r.pdf", "pages": 3, "chunks": 4}
        return httpx.Response(200, json={"version": "v-1", "documents": [document]})
    if path == "/v1/search":
        return httpx.Response(200, json={"hits": [_hit(1), _hit(2)]})
    if path == "/v1/ask":
        return httpx.Response(200, json=_ask(json.loads(request.content)["question"]))
    if path == "/v1/documents":
        return httpx.Response(200, json={"documents": [{"doc_id": "r.pdf", "file_name": "r.pdf"}]})
    if path.startswith("/v1/documents/r.pdf/pages/"):
        page = int(path.rsplit("/", 1)[1])
        if page in PAGES:
            return httpx.Response(200, json={"text": PAGES[page]})
    return httpx.Response(404, json={"detail": "not found"})


def _target(handler: Callable[[httpx.Request], httpx.Response] = _service) -> Target:
    client = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://service")
    return Target(client, "stand-in")


@pytest.fixture
def gold_path(tmp_path: Path) -> Path:
    path = tmp_path / "gold.jsonl"
    path.write_text("\n".join(json.dumps(q) for q in GOLD), encoding="utf-8")
    return path


def _similarity(answers: Sequence[str], references: Sequence[str]) -> list[float]:
    return [0.75 for _ in answers]


def test_the_harness_records_what_the_service_said_and_the_metrics(
    gold_path: Path, tmp_path: Path
) -> None:
    record = evaluate_gold(
        gold_path, _target(), tmp_path / "run", _similarity, RunOptions(progress=False)
    )

    first, second, third = record.rows
    assert first.metric("hit@1") == 0.0 and first.metric("mrr@10") == 0.5
    assert first.citation_valid == (True, False)
    assert first.metric("citation_precision") == 1.0
    assert first.metric("citation_validity") == 0.5
    assert first.metric("answer_similarity") == 0.75
    assert (first.timings_ms.retrieval, first.timings_ms.answering) == (10.0, 5.0)
    assert first.timings_ms.total == 20.0
    assert second.abstained and math.isnan(second.metric("citation_precision"))
    assert second.metric("answer_similarity") == 0.0  # an abstention is not a similar answer
    assert second.reworded and third.metrics == {}
    assert record.meta.index.documents[0].file_name == "r.pdf"
    aggregates = record.aggregates
    assert aggregates.overall["mrr@10"].n == 2 and aggregates.overall["citation_precision"].n == 1
    assert set(aggregates.by_type) == {"factual", "who"}
    assert aggregates.abstention.abstain_rate_unanswerable == 1.0
    assert aggregates.abstention.false_abstain_rate == 0.5
    assert aggregates.latency["total"].n == 3


def test_run_json_reads_back_as_written_in_the_shape_reports_expect(
    gold_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    record = evaluate_gold(gold_path, _target(), out, None, RunOptions(progress=False))
    text = (out / RUN_FILE).read_text(encoding="utf-8")

    def no_nan(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON; undefined values must be null")

    data = json.loads(text, parse_constant=no_nan)
    assert set(data) == {"meta", "rows", "aggregates"}
    assert all(set(row) == ROW_FIELDS for row in data["rows"])
    assert data["rows"][1]["metrics"]["citation_precision"] is None
    assert data["aggregates"]["overall"]["citation_precision"]["n"] == 1
    assert data["meta"]["index"]["version"] == "v-1"  # what the API added is kept
    assert data["rows"][0]["citations"][0]["page_label"] is None
    assert "answer_similarity" not in data["rows"][0]["metrics"]  # run without the model

    assert load_run(out).model_dump_json(indent=1) == text == record.model_dump_json(indent=1)
    md_path, _ = write_reports(out)
    assert "q-2" in md_path.read_text(encoding="utf-8")


def test_run_gold_still_returns_plain_data(gold_path: Path, tmp_path: Path) -> None:
    run = run_gold(gold_path, _target(), tmp_path / "run", None, RunOptions(progress=False))
    assert run["aggregates"]["overall"]["mrr@10"]["mean"] == pytest.approx(0.25)
    assert [row["citation_valid"] for row in run["rows"]] == [(True, False), (), ()]


def test_an_answer_the_harness_cannot_read_is_a_target_error(
    gold_path: Path, tmp_path: Path
) -> None:
    def no_page_span(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/search":
            return httpx.Response(200, json={"hits": [{"doc": "r.pdf", "text": "x"}]})
        return _service(request)

    with pytest.raises(TargetError, match=r"/v1/search .* \(hits\.0\.chunk_id: Field required\)"):
        evaluate_gold(gold_path, _target(no_page_span), tmp_path, None, RunOptions(progress=False))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, r"does not exist; run the evaluation harness first"),
        ("{", r"is not valid JSON \(Invalid JSON: .*\); re-run the harness"),
        ('{"meta": {}, "rows": []}', r"does not have the run format \(meta\.gold: Field required"),
    ],
)
def test_a_missing_or_malformed_run_says_what_is_wrong(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    if content is not None:
        (tmp_path / RUN_FILE).write_text(content, encoding="utf-8")
    with pytest.raises(RunFormatError, match=problem):
        load_run(tmp_path)


def test_a_field_of_the_wrong_type_is_named(gold_path: Path, tmp_path: Path) -> None:
    evaluate_gold(gold_path, _target(), tmp_path, None, RunOptions(progress=False))
    data = json.loads((tmp_path / RUN_FILE).read_text(encoding="utf-8"))
    data["rows"][1]["hits"][0]["page_start"] = "first"
    (tmp_path / RUN_FILE).write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(RunFormatError, match=r"rows\.1\.hits\.0\.page_start: Input should be"):
        load_run(tmp_path)
