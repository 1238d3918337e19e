"""Gold sets: validation that names the line and field, and the team's set against the corpus."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pypdfium2
import pytest

from eval.gold import GoldError, load_gold, misplaced_quotes
from eval.metrics import citation_metrics, retrieval_metrics
from ingest.loaders import load_document
from tests.conftest import REPO

KCSS_GOLD = REPO / "eval" / "gold" / "kcss.jsonl"
GOOD = {
    "id": "q1",
    "question": "Who?",
    "answer": "Someone.",
    "answerable": True,
    "type": "factual",
    "evidence": [{"doc": "a.pdf", "page": 2, "quote": "Someone did it."}],
}


def _write(tmp_path: Path, *rows: object) -> Path:
    path = tmp_path / "gold.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            {**GOOD, "evidence": [{"doc": "a.pdf", "page": 0, "quote": "x"}]},
            "line 2: field 'evidence.0.page'",
        ),
        ({**GOOD, "answerable": "maybe"}, "line 2: field 'answerable'"),
        ({k: v for k, v in GOOD.items() if k != "question"}, "line 2: field 'question'"),
        ({**GOOD, "evidence": []}, "needs at least one evidence entry"),
        ({**GOOD, "answerable": False}, "must have no evidence"),
        ({**GOOD, "colour": "red"}, "line 2: field 'colour'"),
        ({**GOOD}, "line 2: field 'id': 'q1' repeats line 1"),
        ("{not json", "line 2: not valid JSON"),
    ],
)
def test_validation_names_the_line_and_field(tmp_path: Path, bad: object, message: str) -> None:
    with pytest.raises(GoldError, match=message.replace("(", r"\(")):
        load_gold(_write(tmp_path, GOOD, bad))


def test_a_valid_file_loads(tmp_path: Path) -> None:
    questions = load_gold(
        _write(
            tmp_path, GOOD, {**GOOD, "id": "q2", "answerable": False, "evidence": [], "answer": ""}
        )
    )
    assert [q.id for q in questions] == ["q1", "q2"]
    assert questions[0].evidence[0].page == 2


def test_the_kcss_gold_set_has_the_questions_it_promises() -> None:
    questions = load_gold(KCSS_GOLD)
    types = Counter(q.type for q in questions)
    assert len(questions) >= 200
    assert sum(not q.answerable for q in questions) >= 40
    assert sum(q.reworded and q.answerable for q in questions) >= 60
    assert {"factual", "list", "why", "comparison", "definition", "footnote", "reference"} <= set(
        types
    )
    for kind in ("list", "imprint", "footnote", "multi-section"):
        assert types[kind] >= 5, f"fewer than 5 '{kind}' questions"
    multi = [q for q in questions if q.type == "multi-section"]
    assert all(len({(e.doc, e.page) for e in q.evidence}) >= 2 for q in multi), (
        "a multi-section question needs evidence from two places"
    )
    pages = {e.page for q in questions for e in q.evidence if e.doc.endswith(".pdf")}
    assert set(range(4, 31)) <= pages, "evidence should be spread over the whole report"


def test_every_kcss_quote_stands_on_its_stated_page(corpus_files: list[Path]) -> None:
    documents = {p.name: load_document(p).document for p in corpus_files}

    def page_text(doc: str, page: int) -> str | None:
        document = documents.get(doc)
        if document is None or not 1 <= page <= len(document.pages):
            return None
        return document.pages[page - 1].text

    assert misplaced_quotes(load_gold(KCSS_GOLD), page_text) == []


PAGE_LEVEL = {
    **GOOD,
    "id": "q3",
    "evidence": [{"doc": "a.pdf", "page": 4, "text": "Net sales\n2022\n$ 65,984"}],
}


def test_evidence_may_describe_its_page_instead_of_quoting_it(tmp_path: Path) -> None:
    quoted, described = load_gold(_write(tmp_path, GOOD, PAGE_LEVEL))
    assert described.evidence[0].quote is None
    assert described.evidence[0].text == "Net sales\n2022\n$ 65,984"
    assert described.page_level
    assert not quoted.page_level
    # Dumped for the metrics and run.json: a quoted item reads as it always did.
    assert quoted.evidence[0].model_dump() == {
        "doc": "a.pdf",
        "page": 2,
        "quote": "Someone did it.",
    }
    assert described.evidence[0].model_dump() == PAGE_LEVEL["evidence"][0]


def test_evidence_with_neither_quote_nor_text_is_refused(tmp_path: Path) -> None:
    bare = {**GOOD, "evidence": [{"doc": "a.pdf", "page": 2}]}
    with pytest.raises(GoldError, match=r"line 2: field 'evidence\.0': an evidence entry needs"):
        load_gold(_write(tmp_path, GOOD, bare))


def test_page_level_evidence_is_scored_by_page_and_skipped_by_the_quote_check(
    tmp_path: Path,
) -> None:
    (question,) = load_gold(_write(tmp_path, PAGE_LEVEL))
    evidence = [item.model_dump() for item in question.evidence]
    hits = [
        {"doc": "a.pdf", "page_start": 9, "page_end": 9},
        {"doc": "a.pdf", "page_start": 3, "page_end": 4},
    ]
    retrieval = retrieval_metrics(hits, evidence)
    assert (retrieval["hit@1"], retrieval["hit@3"], retrieval["mrr@10"]) == (0.0, 1.0, 0.5)
    citations = citation_metrics([{"doc": "a.pdf", "page": 4}], evidence, [True])
    assert citations == {
        "citation_precision": 1.0,
        "citation_recall": 1.0,
        "citation_validity": 1.0,
    }
    assert misplaced_quotes([question], lambda doc, page: "other words") == []
    assert misplaced_quotes([question], lambda doc, page: None) == ["q3: a.pdf has no page 4"]


def test_financebench_questions_load_as_they_are(financebench_dir: Path) -> None:
    questions = load_gold(financebench_dir / "questions.jsonl")
    assert len(questions) == 34
    assert all(q.answerable and q.page_level for q in questions)
    # Its `doc` is the file name, the name the service gives a client for a document.
    pdfs = financebench_dir / "pdfs"
    counts = {}
    for path in pdfs.glob("*.pdf"):
        pdf = pypdfium2.PdfDocument(path)
        counts[path.name] = len(pdf)
        pdf.close()

    def page_text(doc: str, page: int) -> str | None:
        return "" if 1 <= page <= counts.get(doc, 0) else None

    assert misplaced_quotes(questions, page_text) == []
