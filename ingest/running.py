"""Running headers and footers: the lines printed at the edge of page after page, not content.

A line at a page's top (or bottom) is running when its text, digits normalised, stands at the
same edge of at least half the pages, or of a long run of consecutive pages (a section's header
such as "Notes to Consolidated Financial Statements (continued)"); the "Table of Contents" link
that filings print at the top of their pages needs only a few pages, a report's own contents
page keeps its title. Page numbers ("12", "Page 12 of 90", "F-12", "A-3", "-12-", "xiv") go
wherever they stand at an edge. Lines are peeled from each edge while they are running, so a
line below the first body line is never touched.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence

from ingest.raw import RawLine, RawPage

_ZONE = 3
"""How many lines at the top and at the bottom of a page can be running lines."""
_REPEAT_SHARE = 0.5
_MIN_REPEAT_PAGES = 3
_SECTION_RUN = 8
"""Consecutive pages a line must open (or close) to be a section's running header; statement
titles ("3M Company and Subsidiaries") open five or six pages and stay."""
_RUN_GAP = 1
"""Pages a section's run may skip."""
_MAX_SECTION_WORDS = 10
"""A section's running header is a title, not a sentence: a long line repeated on a run of pages
is a document printed several times over (a power of attorney per director)."""
_STRAY_CHARS = 2
_MIN_LETTERS = 3
"""A running header or footer has words; "(a)" closing many pages is a table's footnote mark."""

_ROMAN = r"(?=[ivxlcdm])m{0,3}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})"
_PAGE_NUMBER = re.compile(
    rf"^(?:page\s+)?(?:(?:[a-z]{{1,2}}\s?-\s?)?\d{{1,4}}|{_ROMAN})(?:\s*(?:of|/)\s*\d{{1,4}})?$"
    r"|^[-–—]\s*\d{1,4}\s*[-–—]$",
    re.IGNORECASE,
)
_NAVIGATION = re.compile(r"^(?:back to |return to )?table of contents$", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")
_WHITESPACE = re.compile(r"\s+")


def strip_running_lines(pages: Sequence[RawPage]) -> list[RawPage]:
    top = _running_by_page([page.lines[:_ZONE] for page in pages])
    bottom = _running_by_page([page.lines[-_ZONE:] for page in pages])
    return [
        RawPage(page.number, _peeled(page.lines, top[index], bottom[index]), page.label)
        for index, page in enumerate(pages)
    ]


def _is_page_number(text: str) -> bool:
    return _PAGE_NUMBER.match(text.strip()) is not None


def _repeat_key(text: str) -> str:
    """The form in which a running line repeats: case, spacing and digits (page numbers, dates)
    do not matter."""
    return _DIGITS.sub(
        "#", _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip().lower()
    )


def _running_by_page(edges: Sequence[Sequence[RawLine]]) -> list[set[str]]:
    """For each page, the keys of its edge lines (top or bottom) that are running there."""
    where: defaultdict[str, list[int]] = defaultdict(list)
    for index, lines in enumerate(edges):
        for key in {_repeat_key(line.text) for line in lines}:
            if sum(char.isalpha() for char in key) >= _MIN_LETTERS:
                where[key].append(index)
    needed = max(_MIN_REPEAT_PAGES, _REPEAT_SHARE * len(edges))
    running: list[set[str]] = [set() for _ in edges]
    for key, indices in where.items():
        if len(indices) >= (_MIN_REPEAT_PAGES if _NAVIGATION.match(key) else needed):
            chosen = indices
        elif len(key.split()) <= _MAX_SECTION_WORDS:
            chosen = [index for run in _runs(indices) if len(run) >= _SECTION_RUN for index in run]
        else:
            chosen = []
        for index in chosen:
            running[index].add(key)
    return running


def _runs(indices: Iterable[int]) -> Iterator[list[int]]:
    """Stretches of ascending page indices with no gap wider than one page (a full-page table
    or chart whose header PDFium reads elsewhere): [1, 2, 4, 8, 9] -> [1, 2, 4], [8, 9]."""
    run: list[int] = []
    for index in indices:
        if run and index > run[-1] + 1 + _RUN_GAP:
            yield run
            run = []
        run.append(index)
    if run:
        yield run


def _peeled(lines: tuple[RawLine, ...], top: set[str], bottom: set[str]) -> tuple[RawLine, ...]:
    """The page without the running lines at its edges; a stray mark that PDFium sets after the
    page number (a trademark's "TM") neither stops the peeling nor goes."""
    running: set[int] = set()
    for order, keys in ((range(len(lines)), top), (range(len(lines) - 1, -1, -1), bottom)):
        for index in itertools.islice(order, _ZONE):
            if _running(lines[index], keys):
                running.add(index)
            elif not _stray(lines[index].text):
                break
    return tuple(line for index, line in enumerate(lines) if index not in running)


def _stray(text: str) -> bool:
    text = text.strip()
    return len(text) <= _STRAY_CHARS and not any(char.isdigit() for char in text)


def _running(line: RawLine, keys: set[str]) -> bool:
    return _is_page_number(line.text) or _repeat_key(line.text) in keys
