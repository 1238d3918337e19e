"""Page-aware, sentence-aware chunking: a pure function of a document and a tokenizer.

Chunks are sized in tokens of the embedding model's own tokenizer so that nothing is silently
truncated at embedding time. A chunk never straddles a section heading; it may cross a page
break, and the sentence a page break cuts in two is kept whole in one chunk whose page span
covers both pages (with the footnotes printed between its halves). A table's row is never cut;
a chunk that continues a table below its column header carries that header (the years its
figures are read under) as the last entry of its heading path.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Protocol

from ingest.models import Chunk, Document, Page
from ingest.sentences import sentence_spans
from ingest.tables import TableLine, table_line

DEFAULT_CHUNK_TOKENS = 200
DEFAULT_OVERLAP_TOKENS = 40
_SENTENCE_END = re.compile(r"[.!?:;…\"”’)\]>]\s*$")
_WORD_SEARCH_TOKENS = 24
"""How far back a forced split of an over-long sentence looks for a word boundary."""


class Tokenizer(Protocol):
    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character spans of each text's tokens, without special tokens."""
        ...


@dataclass(frozen=True)
class ChunkingConfig:
    size: int = DEFAULT_CHUNK_TOKENS
    """Target tokens per chunk; a chunk ends before a sentence that would pass it."""
    overlap: int = DEFAULT_OVERLAP_TOKENS
    """Tokens of whole trailing sentences repeated at the start of the next chunk."""
    max_tokens: int = 254
    """Hard bound: the model's maximum input less its special tokens."""

    def __post_init__(self) -> None:
        if not 0 < self.size <= self.max_tokens:
            raise ValueError(f"chunk size {self.size} must be between 1 and {self.max_tokens}")
        if not 0 <= self.overlap < self.size:
            raise ValueError(f"overlap {self.overlap} must be smaller than the size {self.size}")


class _Kind(Enum):
    HEADING = "heading"
    BODY = "body"
    FOOTNOTE = "footnote"


@dataclass(frozen=True)
class _Columns:
    start: int
    """Where the column header stands in the document's text."""
    text: str


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    kind: _Kind
    path: tuple[str, ...]
    page: int
    tokens: int = 0
    glue: bool = False
    """Keep this unit in the same chunk as the next one (a sentence cut by a page break)."""
    complete: bool = False
    """A table row or column header: whole in itself, never a sentence that a page break cut."""
    columns: _Columns | None = None
    """The column header (years) a table row is read under."""


def chunk_document(
    document: Document, tokenizer: Tokenizer, config: ChunkingConfig | None = None
) -> list[Chunk]:
    config = config or ChunkingConfig()
    text = document.text
    page_offsets = document.page_offsets
    units = list(_units(document, page_offsets))
    spans = tokenizer.token_spans([text[u.start : u.end] for u in units])
    sized: list[_Unit] = []
    for unit, unit_spans in zip(units, spans, strict=True):
        sized.extend(_fit(replace(unit, tokens=len(unit_spans)), unit_spans, config))
    return [
        _make_chunk(document, text, page_offsets, piece)
        for piece in _pack(_glued(sized, text, config), config)
    ]


# -- units: headings and sentences with their offsets ----------------------------------------


def _units(document: Document, page_offsets: Sequence[int]) -> Iterator[_Unit]:
    path: list[tuple[int, str]] = []
    for page, page_offset in zip(document.pages, page_offsets, strict=True):
        headings = {heading.start: heading for heading in page.headings}
        columns: _Columns | None = None
        position = 0
        for block in page.text.split("\n"):
            start, position = position, position + len(block) + 1
            if not block.strip():
                continue
            heading = headings.get(start)
            if heading is not None:
                path = [(level, title) for level, title in path if level < heading.level]
                path.append((heading.level, heading.text))
                columns = None
                yield _Unit(
                    page_offset + start,
                    page_offset + start + len(block),
                    _Kind.HEADING,
                    tuple(title for _, title in path),
                    page.number,
                )
                continue
            kind = _block_kind(page, start)
            sections = tuple(title for _, title in path)
            line = table_line(block)
            if line in (TableLine.ROW, TableLine.HEADER):
                # One unit, so that a chunk never ends inside a row.
                begin = start + len(block) - len(block.lstrip())
                end = start + len(block.rstrip())
                if line is TableLine.HEADER:
                    columns = _Columns(page_offset + begin, block.strip())
                yield _Unit(
                    page_offset + begin,
                    page_offset + end,
                    kind,
                    sections,
                    page.number,
                    columns=columns if line is TableLine.ROW else None,
                    complete=True,
                )
                continue
            if line is TableLine.PROSE:
                columns = None
            for begin, end in sentence_spans(block):
                yield _Unit(
                    page_offset + start + begin,
                    page_offset + start + end,
                    kind,
                    sections,
                    page.number,
                )


def _block_kind(page: Page, start: int) -> _Kind:
    if page.footnotes_start is not None and start >= page.footnotes_start:
        return _Kind.FOOTNOTE
    return _Kind.BODY


# -- sizing ----------------------------------------------------------------------------------


def _fit(unit: _Unit, spans: list[tuple[int, int]], config: ChunkingConfig) -> list[_Unit]:
    """Split a sentence longer than the chunk size at word boundaries."""
    if unit.tokens <= config.size:
        return [unit]
    pieces: list[_Unit] = []
    first = 0
    while first < len(spans):
        last = min(first + config.size, len(spans))
        if last < len(spans):
            last = _word_boundary(unit, spans, first, last)
        begin = unit.start + spans[first][0]
        end = unit.start + spans[last - 1][1] if last < len(spans) else unit.end
        pieces.append(replace(unit, start=begin, end=end, tokens=last - first))
        first = last
    return pieces


def _word_boundary(unit: _Unit, spans: list[tuple[int, int]], first: int, last: int) -> int:
    for candidate in range(last, max(first + 1, last - _WORD_SEARCH_TOKENS), -1):
        if spans[candidate][0] > spans[candidate - 1][1]:  # whitespace before this token
            return candidate
    return last


def _glued(units: list[_Unit], text: str, config: ChunkingConfig) -> list[list[_Unit]]:
    """Group units that must share a chunk: a page's unfinished last sentence, the footnotes
    printed after it, and the sentence's continuation at the top of the next page."""
    groups: list[list[_Unit]] = []
    index = 0
    while index < len(units):
        group = [units[index]]
        index += 1
        if _cut_by_page_end(units, index - 1, text):
            follower = index
            while follower < len(units) and units[follower].kind is _Kind.FOOTNOTE:
                follower += 1
            if follower < len(units) and units[follower].kind is _Kind.BODY:
                candidate = group + units[index : follower + 1]
                if sum(u.tokens for u in candidate) <= config.max_tokens:
                    group, index = [replace(u, glue=True) for u in candidate], follower + 1
        groups.append(group)
    return groups


def _cut_by_page_end(units: list[_Unit], index: int, text: str) -> bool:
    """Whether units[index] is the last body sentence of its page and ends unfinished."""
    unit = units[index]
    if unit.kind is not _Kind.BODY or unit.complete:
        return False
    if _SENTENCE_END.search(text[unit.start : unit.end]):
        return False
    following = (u for u in units[index + 1 :] if u.kind is not _Kind.FOOTNOTE)
    next_unit = next(following, None)
    return next_unit is not None and next_unit.page > unit.page


# -- packing ---------------------------------------------------------------------------------


def _pack(groups: list[list[_Unit]], config: ChunkingConfig) -> Iterator[list[_Unit]]:
    current: list[_Unit] = []
    tokens = 0
    for group in groups:
        group_tokens = sum(u.tokens for u in group)
        heading = group[0].kind is _Kind.HEADING
        has_content = any(u.kind is not _Kind.HEADING for u in current)
        over = tokens + group_tokens > config.size
        too_big = tokens + group_tokens > config.max_tokens
        if current and ((heading and has_content) or (over and (has_content or too_big))):
            yield current
            current = [] if heading else _overlap_tail(current, config)
            tokens = sum(u.tokens for u in current)
            if tokens + group_tokens > config.size:
                current, tokens = [], 0
        current.extend(group)
        tokens += group_tokens
    if current:
        yield current


def _overlap_tail(units: list[_Unit], config: ChunkingConfig) -> list[_Unit]:
    tail: list[_Unit] = []
    tokens = 0
    for unit in reversed(units):
        if unit.kind is _Kind.HEADING or unit.glue or tokens + unit.tokens > config.overlap:
            break
        tail.insert(0, unit)
        tokens += unit.tokens
    return tail


def _make_chunk(
    document: Document, text: str, page_offsets: Sequence[int], units: list[_Unit]
) -> Chunk:
    start, end = units[0].start, units[-1].end
    page_start = bisect_right(page_offsets, start)
    page_end = bisect_right(page_offsets, end - 1)
    body = text[start:end]
    digest = hashlib.sha256(f"{document.doc_id}\0{start}\0{body}".encode()).hexdigest()
    return Chunk(
        chunk_id=digest[:16],
        doc_id=document.doc_id,
        text=body,
        page_start=page_start,
        page_end=page_end,
        heading_path=units[-1].path + _columns_above(units, start),
        char_start=start,
        char_end=end,
        page_breaks=tuple(offset - start for offset in page_offsets[page_start:page_end]),
        token_count=sum(u.tokens for u in units),
    )


def _columns_above(units: list[_Unit], start: int) -> tuple[str, ...]:
    """The column header of a table the chunk continues: its rows would lose their years."""
    above = (u.columns.text for u in units if u.columns is not None and u.columns.start < start)
    return tuple(itertools.islice(above, 1))
