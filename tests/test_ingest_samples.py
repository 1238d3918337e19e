"""The shipped sample documents, checked against the page truth their generator wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docx
import pytest

from ingest.chunking import ChunkingConfig, chunk_document
from ingest.loaders import LoadedDocument, load_document
from ingest.models import Document
from tests.conftest import SAMPLES, WhitespaceTokenizer

TRUTH: dict[str, Any] = json.loads((SAMPLES / "page_truth.json").read_text())["files"]
FILES = sorted(TRUTH)


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module", params=FILES)
def sample(request: pytest.FixtureRequest) -> tuple[LoadedDocument, dict[str, Any]]:
    return load_document(SAMPLES / request.param), TRUTH[request.param]


def test_pages_labels_and_title(sample: tuple[LoadedDocument, dict[str, Any]]) -> None:
    loaded, truth = sample
    document = loaded.document
    assert len(document.pages) == truth["page_count"]
    assert [p.label for p in document.pages] == [p["label"] for p in truth["pages"]]
    assert document.title == truth["title"]
    assert loaded.warnings == ()


def test_headings_sentences_and_footnotes_stand_on_their_pages(
    sample: tuple[LoadedDocument, dict[str, Any]],
) -> None:
    loaded, truth = sample
    for page, expected in zip(loaded.document.pages, truth["pages"], strict=True):
        found = [(h.text, h.level) for h in page.headings]
        assert found == [(h["text"], h["level"]) for h in expected["headings"]], page.number
        text = _flat(page.text)
        for sentence in expected["sentences"]:
            assert _flat(sentence) in text, (page.number, sentence)
        notes = "" if page.footnotes_start is None else _flat(page.text[page.footnotes_start :])
        for footnote in expected["footnotes"]:
            assert _flat(footnote) in notes, (page.number, footnote)
        for bullet in expected.get("bullets", []):
            assert _flat(bullet) in text


def test_pdf_running_lines_hyphenation_and_cross_page_sentences() -> None:
    name = "northland-national-security-strategy.pdf"
    truth = TRUTH[name]
    document = load_document(SAMPLES / name).document
    for page in document.pages:
        assert truth["running_header"] not in page.text
        assert not page.text.rstrip().endswith(truth["running_footer"])
    for item in truth["hyphenations"]:
        assert item["word"] in document.pages[item["page"] - 1].text
    chunks = chunk_document(
        document, WhitespaceTokenizer(), ChunkingConfig(size=120, overlap=20, max_tokens=200)
    )
    for sentence in truth["cross_page_sentences"]:
        # The footnotes printed at the foot of the first page stand between the two halves.
        first, last = sentence["pages"][0], sentence["pages"][-1]
        opening, ending = _flat(sentence["text"])[:40], _flat(sentence["text"])[-12:]
        holders = [c for c in chunks if opening in _flat(c.text) and ending in _flat(c.text)]
        assert holders, sentence["text"]
        assert any(c.page_start <= first and c.page_end >= last for c in holders)


def test_html_hidden_text_is_not_content() -> None:
    truth = TRUTH["astoria-relations-note.html"]
    text = load_document(SAMPLES / "astoria-relations-note.html").document.pages[0].text
    for hidden in truth["hidden_strings"]:
        assert hidden not in text


def test_fact_quotes_are_on_their_pages() -> None:
    for name, truth in TRUTH.items():
        document = load_document(SAMPLES / name).document
        for fact in truth["facts"]:
            assert _flat(fact["quote"]) in _flat(document.pages[fact["page"] - 1].text), fact


def _docx(path: Path) -> Path:
    word = docx.Document()
    word.core_properties.title = "Border Memo"
    word.add_heading("Border Memo", level=1)
    word.add_paragraph("The crossing at Ærøby opens at six.")
    word.add_heading("Details", level=2)
    word.add_paragraph("Trucks wait about two hours.").add_run().add_break(
        docx.enum.text.WD_BREAK.PAGE
    )
    word.add_paragraph("Page two starts here.")
    table = word.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "Crossings"
    table.cell(0, 1).text = "4"
    word.save(str(path))
    return path


def test_docx_pages_follow_page_breaks_and_headings_follow_styles(tmp_path: Path) -> None:
    document: Document = load_document(_docx(tmp_path / "memo.docx")).document
    assert document.title == "Border Memo"
    assert len(document.pages) == 2
    assert [(h.text, h.level) for h in document.pages[0].headings] == [
        ("Border Memo", 1),
        ("Details", 2),
    ]
    assert "Trucks wait about two hours." in document.pages[0].text
    assert document.pages[1].text == "Page two starts here.\nCrossings\n4"
