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


def _pages(*pages: list[str]) -> RawDocument:
    return RawDocument(
        tuple(
            RawPage(number, tuple(_body(text) for text in lines))
            for number, lines in enumerate(pages, start=1)
        )
    )


def test_lettered_page_numbers_go_even_behind_a_stray_mark() -> None:
    bodies = ["Revenue rose.", "Costs fell.", "Cash grew."]
    pages = clean_document(_pages(*([body, f"F-{n}", "TM"] for n, body in enumerate(bodies, 1))))
    for page, body in zip(pages, bodies, strict=True):
        assert "F-" not in page.text
        assert page.text.startswith(body)
        assert page.text.endswith("TM")


def test_a_section_running_header_goes_but_a_title_on_a_few_pages_stays() -> None:
    header = "Notes to Financial Statements (continued)"
    raw = [
        [
            "Acme Corp and Subsidiaries" if n <= 5 else header,
            f"Note text {'ABCDEFGHIJKLMNOPQRST'[n - 1]}.",
        ]
        for n in range(1, 21)
    ]
    pages = clean_document(_pages(*raw))
    assert not any(header in page.text for page in pages)
    assert all(pages[n].text.startswith("Acme Corp and Subsidiaries") for n in range(5))


def test_a_contents_link_on_several_pages_goes_but_a_contents_title_stays() -> None:
    bodies = ["Revenue rose.", "Costs fell.", "Cash grew.", "Debt shrank."]
    linked = clean_document(_pages(*(["Table of Contents", body] for body in bodies)))
    assert [page.text for page in linked] == bodies
    titled = clean_document(
        _pages(["Cover page."], ["Table of Contents", "Introduction … 3"], ["Intro."], ["End."])
    )
    assert titled[1].text.startswith("Table of Contents")


def test_table_rows_are_blocks_of_their_own_with_their_column_header() -> None:
    lines = [
        "Cash flows",
        "(Millions) 2018 2017",
        "Net income $ 5,363 $ 4,869",
        "Proceeds from sale of businesses,",
        "846 1,065",
        "Other — net 9 (6)",
    ]
    text = clean_document(_pages(lines))[0].text
    assert text.split("\n") == [
        "Cash flows",
        "(Millions) 2018 2017",
        "Net income $ 5,363 $ 4,869",
        "Proceeds from sale of businesses, 846 1,065",
        "Other — net 9 (6)",
    ]


def test_a_column_header_stacked_over_lines_stays_one_block() -> None:
    lines = ["Year Ended", "December 26,", "2015", "December 27,", "2014", "(In millions)"]
    text = clean_document(_pages([*lines, "Net loss $ (660) $ (403)", "Other (3) (13)"]))[0].text
    assert text.split("\n")[0] == "Year Ended December 26, 2015 December 27, 2014 (In millions)"


def test_a_lone_line_ending_in_numbers_is_no_table_row() -> None:
    lines = ["Design: Brand Vision Contact: +383 45 559 923", "Email: studio@example.org"]
    text = clean_document(_pages(lines))[0].text
    assert text == " ".join(lines)
