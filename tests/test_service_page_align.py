"""Offsets in a page's stored (cleaned) text mapped onto PDFium's raw characters of the page."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from service.page_align import Alignment, skeleton

HEADER = "Republic of Northland | National Security Strategy 2025–2030\r\n"
FOOTER = "\r\nMinistry of Defence of Northland\r\n7"


def raw_span(stored: str, quote: str, raw: str, occurrence: int = 0) -> str:
    """The raw text the alignment gives for the `occurrence`-th `quote` in `stored`."""
    start = -1
    for _ in range(occurrence + 1):
        start = stored.index(quote, start + 1)
    span = Alignment(stored, raw).span(start, start + len(quote))
    assert span is not None
    return raw[span[0] : span[1] + 1]


def test_a_quote_on_a_page_whose_header_and_footer_were_stripped() -> None:
    body = "The Government will set up a national security council. It meets every month."
    raw = HEADER + body.replace("council. ", "council.\r\n") + FOOTER
    assert raw_span(body, "It meets every month.", raw) == "It meets every month."
    assert raw_span(body, "The Government", raw) == "The Government"


def test_a_quote_across_a_line_break_and_a_word_hyphenated_at_the_line_end() -> None:
    stored = "We will protect critical infrastructure and the energy grid."
    for hyphen in ("-", "\x02"):
        raw = f"We will protect critical infra{hyphen}\r\nstructure and the energy\r\ngrid."
        found = raw_span(stored, "critical infrastructure and the energy grid", raw)
        assert found == f"critical infra{hyphen}\r\nstructure and the energy\r\ngrid"
    # PDFium may also join the halves itself, marking the hyphen with U+FFFE.
    joined = "We will protect critical infra\ufffestructure and the energy grid."
    assert raw_span(stored, "infrastructure", joined) == "infra\ufffestructure"


def test_footnote_marks_and_dot_leaders_that_cleaning_removed() -> None:
    stored = "Serbia joined in 2007. The talks went on.\nContents … 12"
    raw = "Serbia joined in 2007.14\r\n The talks went on.\r\nContents . . . . . . . 12"
    assert raw_span(stored, "in 2007. The talks", raw) == "in 2007.14\r\n The talks"
    assert raw_span(stored, "Contents … 12", raw) == "Contents . . . . . . . 12"


def test_composed_accents_and_ligatures_match_their_decomposed_forms() -> None:
    stored = "The LNG terminal at Ærøby café is ﬁnished."
    raw = "The LNG terminal at \u00c6r\u00f8by cafe\u0301 is finished."
    assert raw_span(stored, "café is ﬁnished", raw) == "cafe\u0301 is finished"


def test_a_sentence_that_recurs_on_the_page_maps_to_the_same_occurrence() -> None:
    sentence = "Security is a shared duty."
    stored = f"{sentence} First the state acts. {sentence} Then citizens act. {sentence}"
    raw = stored.replace(". ", ".\r\n")
    for occurrence in range(3):
        start = [m.start() for m in re.finditer(re.escape(sentence), stored)][occurrence]
        span = Alignment(stored, raw).span(start, start + len(sentence))
        assert span is not None
        expected = [m.start() for m in re.finditer(re.escape(sentence), raw)][occurrence]
        assert span == (expected, expected + len(sentence) - 1)


def test_text_that_is_not_on_the_raw_page_is_not_found() -> None:
    alignment = Alignment("Entirely different words here.", "Nothing of the kind.\r\n")
    assert alignment.span(0, 30) is None
    assert alignment.span(5, 5) is None


def test_the_skeleton_keeps_offsets_into_the_source() -> None:
    found = skeleton("a-b c\u00e9\ufb01")
    assert found.text == "abcefi"
    assert found.offsets == (0, 2, 4, 5, 6, 6)


_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGH", min_size=1, max_size=9)


@settings(max_examples=150, deadline=None)
@given(
    words=st.lists(_WORD, min_size=4, max_size=80),
    breaks=st.lists(st.sampled_from(["space", "line", "hyphen", "mark"]), min_size=80, max_size=80),
    span=st.tuples(st.integers(0, 79), st.integers(1, 80)),
)
def test_any_span_of_cleaned_text_maps_onto_exactly_its_raw_characters(
    words: list[str], breaks: list[str], span: tuple[int, int]
) -> None:
    """Raw text as PDFium gives it (a header, words broken across lines, some hyphenated at the
    line end, footnote marks after some) against the cleaned text ingest stores (single spaces,
    hyphens joined, marks gone): any run of whole words maps onto the raw characters from its
    first letter to its last, marks and hyphens in between included."""
    first, last = sorted((min(span[0], len(words) - 1), min(span[1], len(words))))
    last = max(last, first + 1)
    stored_parts: list[str] = []
    raw_parts: list[str] = [HEADER]
    for index, word in enumerate(words):
        kind = breaks[index]
        if kind == "hyphen" and len(word) > 1:
            raw_parts.append(f"{word[:1]}-\r\n{word[1:]}")
        else:
            raw_parts.append(word)
        if kind == "mark" and index + 1 < len(words):
            raw_parts.append(str(index + 1))
        raw_parts.append("\r\n" if kind in ("line", "hyphen") else " ")
        stored_parts.append(word)
    stored = " ".join(stored_parts)
    raw = "".join(raw_parts) + FOOTER
    start = len(" ".join(stored_parts[:first])) + (1 if first else 0)
    end = len(" ".join(stored_parts[:last]))
    found = Alignment(stored, raw).span(start, end)
    assert found is not None
    chars = raw[found[0] : found[1] + 1]
    # Letters only: marks are digits, and the hyphens and breaks are not letters.
    assert re.sub(r"[^A-Za-z]", "", chars) == "".join(words[first:last])
    assert chars[0] == words[first][0] and chars[-1] == words[last - 1][-1]
