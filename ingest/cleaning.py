"""Turn loader lines into clean pages without moving any text from the page it is printed on.

Running headers and footers go (lines repeated at the top or bottom of most pages, bare page
numbers), words hyphenated at line ends are re-joined, headings and footnotes are recognised
from typography where the format has it, and each page becomes blocks separated by newlines.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from ingest.models import Heading, Page
from ingest.raw import RawDocument, RawLine, RawPage

_ZONE = 2
"""How many lines at the top and at the bottom of a page can be a running header or footer."""
_REPEAT_SHARE = 0.5
_MIN_REPEAT_PAGES = 3
_DISPLAY_RATIO = 1.3
_FOOTNOTE_RATIO = 0.9
_MAX_HEADING_CHARS = 200
_MAX_HEADING_LEVEL = 4
_SHORT_LINE_SHARE = 0.8

_PAGE_NUMBER = re.compile(
    r"^(?:page\s+)?(?:\d{1,4}|[ivxlcdm]{1,7})(?:\s*(?:of|/)\s*\d{1,4})?$|^[-–—]\s*\d{1,4}\s*[-–—]$",
    re.IGNORECASE,
)
_DIGITS = re.compile(r"\d+")
_FOOTNOTE_START = re.compile(r"^\d{1,3}[.)]?\s+[^\d\s]")
_DOT_LEADER = re.compile(r"(?:\s?\.){4,}\s*")
_WHITESPACE = re.compile(r"\s+")
_SENTENCE_END = (".", "!", "?", ":", '"', "”", "’", ")", ">", ";")
_OPEN_BRACKETED_URL = re.compile(r"<[^\s>]*$")
_OPEN_URL = re.compile(r"(?:https?://|www\.)\S*$")


class _Kind(Enum):
    BODY = "body"
    HEADING = "heading"
    FOOTNOTE = "footnote"


@dataclass(frozen=True)
class _Block:
    kind: _Kind
    text: str
    level: int = 0


def clean_document(raw: RawDocument) -> tuple[Page, ...]:
    pages = _strip_running_lines(raw.pages) if raw.printed_pages else list(raw.pages)
    body_size = _body_size(pages)
    levels = _heading_levels(pages, body_size)
    typical = _typical_line_length(pages)
    return tuple(_build_page(page, _blocks(page, body_size, levels, typical)) for page in pages)


def normalize(text: str) -> str:
    """NFC and single spaces: the form every stored text and every quote check uses."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


# -- running headers and footers -------------------------------------------------------------


def _strip_running_lines(pages: Sequence[RawPage]) -> list[RawPage]:
    top, bottom = Counter[str](), Counter[str]()
    for page in pages:
        top.update({_repeat_key(line.text) for line in page.lines[:_ZONE]})
        bottom.update({_repeat_key(line.text) for line in page.lines[-_ZONE:]})
    needed = max(_MIN_REPEAT_PAGES, _REPEAT_SHARE * len(pages))
    running_top = {key for key, count in top.items() if count >= needed}
    running_bottom = {key for key, count in bottom.items() if count >= needed}
    return [
        RawPage(page.number, _without_running(page.lines, running_top, running_bottom), page.label)
        for page in pages
    ]


def _without_running(
    lines: tuple[RawLine, ...], top: set[str], bottom: set[str]
) -> tuple[RawLine, ...]:
    count = len(lines)

    def running(index: int, line: RawLine) -> bool:
        text = line.text.strip()
        in_top, in_bottom = index < _ZONE, index >= count - _ZONE
        if (in_top or in_bottom) and _PAGE_NUMBER.match(text):
            return True
        key = _repeat_key(text)
        return (in_top and key in top) or (in_bottom and key in bottom)

    return tuple(line for index, line in enumerate(lines) if not running(index, line))


def _repeat_key(text: str) -> str:
    return _DIGITS.sub("#", normalize(text).lower())


# -- typography ------------------------------------------------------------------------------


def _body_size(pages: Sequence[RawPage]) -> float:
    sizes = Counter[float]()
    for page in pages:
        for line in page.lines:
            if line.size > 0:
                sizes[line.size] += len(line.text)
    return sizes.most_common(1)[0][0] if sizes else 0.0


def _is_heading_style(line: RawLine, body_size: float) -> bool:
    if line.heading_level is not None:
        return True
    if body_size <= 0 or line.size <= 0 or len(line.text) > _MAX_HEADING_CHARS:
        return False
    if line.size >= body_size * _DISPLAY_RATIO:
        return True
    return line.bold and line.size > body_size


def _heading_levels(pages: Sequence[RawPage], body_size: float) -> dict[float, int]:
    """Map heading font sizes to levels: the largest size used on several pages is level 1."""
    pages_per_size: dict[float, set[int]] = {}
    for page in pages:
        for line in page.lines:
            if line.heading_level is None and _is_heading_style(line, body_size):
                pages_per_size.setdefault(line.size, set()).add(page.number)
    if not pages_per_size:
        return {}
    sizes = sorted(pages_per_size, reverse=True)
    recurring = [size for size in sizes if len(pages_per_size[size]) > 1]
    top = recurring[0] if recurring else sizes[0]
    levels = {size: 1 for size in sizes if size >= top}
    # One-off sizes (a cover, an imprint) must not push the recurring sub-headings down a level.
    for size in sizes:
        if size < top:
            above = sum(1 for other in recurring if size < other < top)
            levels[size] = min(2 + above, _MAX_HEADING_LEVEL)
    return levels


def _typical_line_length(pages: Sequence[RawPage]) -> int:
    lengths = sorted(len(line.text) for page in pages for line in page.lines)
    return lengths[int(len(lengths) * 0.9)] if lengths else 0


# -- blocks ----------------------------------------------------------------------------------


def _blocks(
    page: RawPage, body_size: float, levels: dict[float, int], typical: int
) -> list[_Block]:
    kinds = _line_kinds(page.lines, body_size)
    blocks: list[_Block] = []
    current: list[str] = []
    current_kind, current_level = _Kind.BODY, 0

    def flush() -> None:
        text = _join_lines(current)
        if text:
            blocks.append(_Block(current_kind, text, current_level))
        current.clear()

    previous: RawLine | None = None
    for line, kind in zip(page.lines, kinds, strict=True):
        level = 0
        if kind is _Kind.HEADING:
            level = line.heading_level or levels.get(line.size, _MAX_HEADING_LEVEL)
        starts_block = (
            previous is None
            or kind is not current_kind
            or level != current_level
            or (kind is _Kind.FOOTNOTE and _FOOTNOTE_START.match(line.text) is not None)
            or (kind is _Kind.BODY and _ends_paragraph(previous.text, typical))
            or (kind is _Kind.BODY and (line.bold, line.size) != (previous.bold, previous.size))
            or (kind is _Kind.HEADING and previous.text.endswith(_SENTENCE_END))
            or line.heading_level is not None
            or line.starts_paragraph
        )
        if starts_block:
            flush()
            current_kind, current_level = kind, level
        current.append(line.text)
        previous = line
    flush()
    return blocks


def _line_kinds(lines: Sequence[RawLine], body_size: float) -> list[_Kind]:
    kinds = [_Kind.HEADING if _is_heading_style(line, body_size) else _Kind.BODY for line in lines]
    if body_size <= 0:
        return kinds
    # Footnotes: the run of small lines closing the page, opened by a numbered line.
    start = len(lines)
    while start > 0 and 0 < lines[start - 1].size <= body_size * _FOOTNOTE_RATIO:
        start -= 1
    # A note carried over from the previous page opens the run without a number of its own.
    if any(_FOOTNOTE_START.match(lines[i].text) for i in range(start, len(lines))):
        kinds[start:] = [_Kind.FOOTNOTE] * (len(lines) - start)
    return kinds


def _ends_paragraph(text: str, typical: int) -> bool:
    text = text.rstrip()
    if _DOT_LEADER.search(text) and text[-1:].isdigit():
        return True  # a table-of-contents entry
    if text.endswith(">"):
        return True  # a reference entry closes with its bracketed URL
    return len(text) < typical * _SHORT_LINE_SHARE and text.endswith(_SENTENCE_END)


def _join_lines(lines: Sequence[str]) -> str:
    joined = ""
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if not joined:
            joined = line
        elif _hyphenated(joined, line):
            joined = joined[:-1] + line
        elif _wrapped_url(joined, line):
            joined += line
        else:
            joined += " " + line
    return normalize(_DOT_LEADER.sub(" … ", joined))


def _wrapped_url(left: str, right: str) -> bool:
    """URLs wrap at the line end without a hyphen; joining them with a space would break them."""
    if _OPEN_BRACKETED_URL.search(left):
        return True
    return _OPEN_URL.search(left) is not None and not right[:1].isupper()


def _hyphenated(left: str, right: str) -> bool:
    """A word broken at the line end: 'infra-' + 'structure', but not 'EU-' + 'led'."""
    if len(left) < 3 or not left.endswith("-") or left.endswith("--"):
        return False
    before = left[-2]
    return before.isalpha() and before.islower() and right[:1].islower()


def _build_page(raw: RawPage, blocks: Sequence[_Block]) -> Page:
    headings: list[Heading] = []
    footnotes_start: int | None = None
    parts: list[str] = []
    position = 0
    for block in blocks:
        if block.kind is _Kind.HEADING:
            headings.append(Heading(block.text, block.level, position, position + len(block.text)))
        elif block.kind is _Kind.FOOTNOTE and footnotes_start is None:
            footnotes_start = position
        parts.append(block.text)
        position += len(block.text) + 1
    return Page(
        number=raw.number,
        text="\n".join(parts),
        label=raw.label,
        headings=tuple(headings),
        footnotes_start=footnotes_start,
    )
