"""The reference KCSS report: pages, headings, clean chunks, and every sentence covered."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sentencex

from ingest.chunking import ChunkingConfig, chunk_document
from ingest.loaders import LoadedDocument, load_document
from ingest.models import Chunk

SECTION_PAGES = {
    "Executive Summary": 5,
    "Introduction": 6,
    "An Overview of Serbia's Security Doctrine": 8,
    "Russia and CSTO in Serbia's National Security Strategy": 11,
    "China in Serbia's National Security Strategy": 14,
    "The West in Serbia's Security Doctrine": 17,
    "Implications of the Strategy for Kosovo": 20,
    "Comparative Analysis: Kosovo's and Serbia's Security Strategies": 24,
    "Concluding reflection": 26,
    "Recommendations": 27,
    "References": 28,
}
RUNNING_HEADER = "KCSS | Serbian Security Doctrine"
RUNNING_FOOTER = re.compile(r"Kosovar Centre for Security Studies \d")


@pytest.fixture(scope="module")
def loaded(reference_pdf: Path) -> LoadedDocument:
    return load_document(reference_pdf)


@pytest.fixture(scope="module")
def chunks(loaded: LoadedDocument, model_tokenizer) -> list[Chunk]:  # type: ignore[no-untyped-def]
    config = ChunkingConfig(max_tokens=model_tokenizer.max_tokens)
    return chunk_document(loaded.document, model_tokenizer, config)


def test_page_count_and_no_blank_pages(loaded: LoadedDocument) -> None:
    assert len(loaded.document.pages) == 30
    assert [p.number for p in loaded.document.pages] == list(range(1, 31))
    assert loaded.warnings == ()


@pytest.mark.parametrize(("heading", "page"), SECTION_PAGES.items())
def test_section_heading_is_found_on_its_page(
    loaded: LoadedDocument, heading: str, page: int
) -> None:
    where = [p.number for p in loaded.document.pages for h in p.headings if h.text == heading]
    assert where == [page]
    level = next(h.level for h in loaded.document.pages[page - 1].headings if h.text == heading)
    assert level == 1


def test_subheading_spanning_two_lines_is_one_level_two_heading(loaded: LoadedDocument) -> None:
    headings = loaded.document.pages[10].headings
    assert [h.level for h in headings] == [1, 2]
    assert headings[1].text.endswith("overshadowing the rhetoric of balanced neutrality")


def test_running_header_and_footer_are_gone_from_pages_and_chunks(
    loaded: LoadedDocument, chunks: list[Chunk]
) -> None:
    for page in loaded.document.pages:
        assert RUNNING_HEADER not in page.text
        assert not RUNNING_FOOTER.search(page.text)
        assert page.text.split("\n")[-1].strip() != str(page.number)
    for chunk in chunks:
        assert RUNNING_HEADER not in chunk.text
        assert not RUNNING_FOOTER.search(chunk.text)
    # The organisation's name stays where it is content rather than a footer.
    assert "Kosovar Centre for Security Studies (KCSS)" in loaded.document.pages[1].text


def test_footnote_marks_are_unglued_and_footnotes_stay_on_their_page(
    loaded: LoadedDocument,
) -> None:
    page11 = loaded.document.pages[10]
    assert "(NIS). In February Serbian Foreign Minister" in page11.body
    assert page11.footnotes_start is not None
    assert page11.text[page11.footnotes_start :].startswith("8. US imposes sanctions")
    page6 = loaded.document.pages[5]
    assert page6.text[page6.footnotes_start :].startswith("1. Sasa Dragojlo")


def test_every_sentence_is_in_a_chunk_covering_its_page(
    loaded: LoadedDocument, chunks: list[Chunk]
) -> None:
    by_page: dict[int, list[str]] = {}
    for chunk in chunks:
        flat = " ".join(chunk.text.split())
        for page in range(chunk.page_start, chunk.page_end + 1):
            by_page.setdefault(page, []).append(flat)
    missing = []
    for page in loaded.document.pages:
        for block in page.text.split("\n"):
            for sentence in sentencex.segment("en", block):
                flat = " ".join(sentence.split())
                if flat and not any(flat in text for text in by_page.get(page.number, [])):
                    missing.append((page.number, flat[:80]))
    assert missing == []


def test_sentence_cut_by_a_page_break_is_whole_in_one_chunk(chunks: list[Chunk]) -> None:
    sentence = "hybrid warfare, and"
    holding = [c for c in chunks if sentence in c.text and "military buildup as the most" in c.text]
    assert holding, "the p6->p7 sentence is split across chunks"
    chunk = holding[0]
    assert (chunk.page_start, chunk.page_end) == (6, 7)
    cut = chunk.text.index("military buildup as the most")
    assert chunk.page_at(cut) == 7
    assert chunk.page_at(chunk.text.index(sentence)) == 6


def test_chunks_respect_the_model_limit(chunks: list[Chunk], model_tokenizer) -> None:  # type: ignore[no-untyped-def]
    assert all(model_tokenizer.count(c.text) <= model_tokenizer.max_tokens for c in chunks)
    assert all(c.token_count <= model_tokenizer.max_tokens for c in chunks)


def test_inspect_shows_thirty_pages_with_headings(reference_pdf: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "inspect", str(reference_pdf), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    payload = json.loads(result.stdout)
    pages = payload["document"]["pages"]
    assert len(pages) == 30
    for heading, page in SECTION_PAGES.items():
        assert heading in [h["text"] for h in pages[page - 1]["headings"]]
