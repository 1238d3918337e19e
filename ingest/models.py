"""Typed records that flow out of ingestion: documents, pages, chunks and the ingest report.

Page numbers are always the 1-based physical page index a PDF viewer shows; a printed page label
(roman front matter, "A-3") travels beside it, never instead of it.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

PAGE_SEPARATOR = "\n"
"""Joins page texts into a document text; chunk offsets index that joined text."""


@dataclass(frozen=True)
class Heading:
    """A section heading printed on a page; `start`/`end` index the page's cleaned text."""

    text: str
    level: int
    start: int
    end: int


@dataclass(frozen=True)
class Page:
    number: int
    """1-based physical page, as a PDF viewer shows it."""
    text: str
    """Cleaned text: blocks (headings, paragraphs, footnotes) separated by newlines."""
    label: str | None = None
    """Printed page label when the file defines one (e.g. "iv", "12")."""
    headings: tuple[Heading, ...] = ()
    footnotes_start: int | None = None
    """Offset in `text` where the footnotes printed on this page begin, if any."""

    @property
    def body(self) -> str:
        return self.text if self.footnotes_start is None else self.text[: self.footnotes_start]


@dataclass(frozen=True)
class Document:
    doc_id: str
    """Stable, URL-path-safe id derived from the file name; two names never share one
    (see `ingest.ids`)."""
    file_name: str
    title: str
    sha256: str
    pages: tuple[Page, ...]

    @property
    def text(self) -> str:
        return PAGE_SEPARATOR.join(page.text for page in self.pages)

    @property
    def page_offsets(self) -> tuple[int, ...]:
        """Offset in `text` where each page begins."""
        offsets, position = [], 0
        for page in self.pages:
            offsets.append(position)
            position += len(page.text) + len(PAGE_SEPARATOR)
        return tuple(offsets)


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    doc_id: str
    text: str
    page_start: int
    page_end: int
    heading_path: tuple[str, ...]
    """The section headings the chunk stands under, outermost first. A chunk that continues a
    table whose column header (its years) stands above the chunk ends with that header, so that
    its figures keep their labels."""
    char_start: int
    """Offset of `text` in its document's `text`; `char_end - char_start == len(text)`."""
    char_end: int
    page_breaks: tuple[int, ...] = ()
    """Offsets in `text` where pages page_start+1 .. page_end begin."""
    token_count: int = 0

    def page_at(self, offset: int) -> int:
        """The page that the character at `offset` (relative to `text`) stands on."""
        if not 0 <= offset < max(len(self.text), 1):
            raise IndexError(f"offset {offset} is outside a chunk of {len(self.text)} characters")
        return self.page_start + bisect_right(self.page_breaks, offset)


class FileStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Found inside a folder but of a type Chancery does not read; not a failure."""


@dataclass(frozen=True)
class FileReport:
    path: Path
    status: FileStatus
    reason: str = ""
    """Why the file failed or was skipped, in words a person understands."""
    pages: int = 0
    chunks: int = 0
    warnings: tuple[str, ...] = ()


@dataclass
class IngestReport:
    files: list[FileReport] = field(default_factory=list)

    @property
    def ok(self) -> list[FileReport]:
        return [f for f in self.files if f.status is FileStatus.OK]

    @property
    def failed(self) -> list[FileReport]:
        return [f for f in self.files if f.status is FileStatus.FAILED]

    @property
    def skipped(self) -> list[FileReport]:
        return [f for f in self.files if f.status is FileStatus.SKIPPED]
