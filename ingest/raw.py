"""What a loader hands to cleaning: lines per page, with whatever typography the format exposes."""

from __future__ import annotations

from dataclasses import dataclass


class LoadError(Exception):
    """A file cannot be read; the message says why in words a person understands."""


@dataclass(frozen=True)
class RawLine:
    text: str
    size: float = 0.0
    """Font size in points; 0 when the format has none (text, Markdown, HTML, DOCX)."""
    bold: bool = False
    heading_level: int | None = None
    """Set by formats that mark headings structurally (Markdown #, <h2>, Word "Heading 2")."""
    starts_paragraph: bool = False
    """Set by formats that mark paragraphs (a blank line, <p>, a Word paragraph)."""


@dataclass(frozen=True)
class RawPage:
    number: int
    lines: tuple[RawLine, ...]
    label: str | None = None


@dataclass(frozen=True)
class RawDocument:
    pages: tuple[RawPage, ...]
    title: str | None = None
    """Title from the file's own metadata, when it has one."""
    printed_pages: bool = True
    """Whether pages were laid out for print and so may carry running headers and footers
    (PDF, text with form feeds); HTML and Word text never includes them."""
