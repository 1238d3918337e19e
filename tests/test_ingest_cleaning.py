"""Cleaning, page by page: running lines go, words re-join, headings and footnotes are found."""

from __future__ import annotations

from ingest.cleaning import clean_document, normalize
from ingest.raw import RawDocument, RawLine, RawPage

BODY = 10.0


def _body(text: str) -> RawLine:
    return RawLine(text, size=BODY)


def _report(page_count: int, extra: dict[int, list[RawLine]] | None = None) -> RawDocument:
    extra = extra or {}
    pages = []
    for number in range(1, page_count + 1):
        lines = [
            RawLine("Northland | Strategy 2025", size=7),
            *extra.get(number, [_body(f"Content of page {'ABCDEFGHIJ'[number]} is unique.")]),
            RawLine(f"Ministry of Defence {number}", size=7),
        ]
        pages.append(RawPage(number, tuple(lines)))
    return RawDocument(tuple(pages))


def test_running_header_footer_and_page_numbers_are_removed() -> None:
    pages = clean_document(_report(5, {3: [_body("Text on three."), RawLine("3", size=7)]}))
    for page in pages:
        assert "Northland | Strategy" not in page.text
        assert "Ministry of Defence" not in page.text
    assert pages[2].text == "Text on three."
    assert pages[0].text == "Content of page B is unique."


def test_lines_repeated_on_few_pages_are_kept() -> None:
    pages = clean_document(_report(6, {1: [RawLine("Special note", size=BODY)]}))
    assert pages[0].text == "Special note"


def test_hyphenated_words_rejoin_but_compounds_keep_their_hyphen() -> None:
    lines = [
        _body("The new infra-"),
        _body("structure plan is an EU-"),
        _body("led effort with a well-"),
        _body("Known outcome."),
    ]
    text = clean_document(_report(3, {2: lines}))[1].text
    assert text == "The new infrastructure plan is an EU- led effort with a well- Known outcome."


def test_wrapped_urls_are_joined_without_a_space() -> None:
    lines = [_body("See <https://example.org/a-very-long"), _body("-path/report.pdf> for details.")]
    text = clean_document(_report(3, {2: lines}))[1].text
    assert "<https://example.org/a-very-long-path/report.pdf>" in text


def test_headings_by_size_and_weight_with_levels_and_multiline_merge() -> None:
    extra = {
        2: [
            RawLine("Energy Security", 16, bold=True),
            _body("Body one."),
            RawLine("Gas storage is a national", 12, bold=True),
            RawLine("priority for the winter", 12, bold=True),
            _body("Body two."),
        ],
        3: [
            RawLine("Cyber Defence", 16, bold=True),
            RawLine("Incidents", 12, bold=True),
            _body("Body three."),
        ],
    }
    pages = clean_document(_report(4, extra))
    assert [(h.text, h.level) for h in pages[1].headings] == [
        ("Energy Security", 1),
        ("Gas storage is a national priority for the winter", 2),
    ]
    for heading in pages[1].headings:
        assert pages[1].text[heading.start : heading.end] == heading.text


def test_footnotes_are_kept_on_their_page_after_the_body() -> None:
    extra = {
        2: [
            _body("A claim with a source."),
            RawLine("1. Agency report, 2024, p. 4.", 7.5),
            RawLine("continued note text.", 7.5),
        ]
    }
    page = clean_document(_report(3, extra))[1]
    assert page.footnotes_start is not None
    assert page.text[page.footnotes_start :] == "1. Agency report, 2024, p. 4. continued note text."
    assert page.body.strip() == "A claim with a source."


def test_normalize_applies_nfc_and_collapses_whitespace() -> None:
    assert normalize("Vuc\u030cic\u0301  said\n\t so ") == "Vučić said so"
