"""Gold sets: validation that names the line and field, and the team's set against the corpus."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from eval.gold import GoldError, load_gold, misplaced_quotes
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
