"""Turn loader lines into clean pages without moving any text from the page it is printed on.

Running headers and footers go (`ingest.running`), words hyphenated at line ends are re-joined,
headings and footnotes are recognised from typography where the format has it, and each page
becomes blocks separated by newlines; a table's rows and its column header are blocks of their
own (`ingest.tables`).
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
from ingest.running import strip_running_lines
from ingest.tables import closes_row, is_column_header

_DISPLAY_RATIO = 1.3
_FOOTNOTE_RATIO = 0.9
_MAX_HEADING_CHARS = 200
_MAX_HEADING_LEVEL = 4
_SHORT_LINE_SHARE = 0.8
_TABLE_REACH = 2
"""Lines either side of a row where another row shows it stands in a table."""

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
    pages = strip_running_lines(raw.pages) if raw.printed_pages else list(raw.pages)
    body_size = _body_size(pages)
    levels = _heading_levels(pages, body_size)
    typical = _typical_line_length(pages)
    return tuple(_build_page(page, _blocks(page, body_size, levels, typical)) for page in pages)


def normalize(text: str) -> str:
    """NFC and single spaces: the form every stored text and every quote check uses."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


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

    headers = [is_column_header(line.text) for line in page.lines]
    table_ends = _table_line_ends(page.lines, headers)
    previous: RawLine | None = None
    previous_ends_table_line = False
    for line, kind, header, ends_table_line in zip(
        page.lines, kinds, headers, table_ends, strict=True
    ):
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
            # A table's rows never run into one another; its column header is a block of its own.
            or previous_ends_table_line
            or header
        )
        if starts_block:
            flush()
            current_kind, current_level = kind, level
        current.append(line.text)
        previous, previous_ends_table_line = line, ends_table_line
    flush()
    return blocks


def _table_line_ends(lines: Sequence[RawLine], headers: Sequence[bool]) -> list[bool]:
    """Which lines end a block as a table's line: a column header, and a row whose figures close
    it with another row near by (a lone line ending in numbers, such as a phone number, is no
    table)."""
    closes = [closes_row(line.text) for line in lines]

    def near_another_row(index: int) -> bool:
        before = closes[max(0, index - _TABLE_REACH) : index]
        after = closes[index + 1 : index + 1 + _TABLE_REACH]
        return any(before) or any(after)

    return [
        header or (closes[index] and near_another_row(index))
        for index, header in enumerate(headers)
    ]


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
