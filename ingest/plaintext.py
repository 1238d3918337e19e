"""Plain text and Markdown: a form feed starts a new page, otherwise the whole file is page 1."""

from __future__ import annotations

import re

from ingest.raw import LoadError, RawDocument, RawLine, RawPage

_MARKDOWN_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FORM_FEED = "\f"


def decode_text(data: bytes) -> str:
    if not data.strip():
        raise LoadError("the file is empty")
    if b"\x00" in data[:4096]:
        raise LoadError("it is a binary file, not text (is the extension wrong?)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Reports exported on older Windows machines are often cp1252; it decodes any byte.
        return data.decode("cp1252", errors="replace")


def load_text(data: bytes) -> RawDocument:
    return _paged(decode_text(data), markdown=False)


def load_markdown(data: bytes) -> RawDocument:
    return _paged(decode_text(data), markdown=True)


def _paged(text: str, *, markdown: bool) -> RawDocument:
    pages = tuple(
        RawPage(number=number, lines=tuple(_lines(chunk, markdown=markdown)))
        for number, chunk in enumerate(text.split(_FORM_FEED), start=1)
    )
    title = next(
        (line.text for page in pages for line in page.lines if line.heading_level == 1), None
    )
    return RawDocument(pages=pages, title=title)


def _lines(text: str, *, markdown: bool) -> list[RawLine]:
    lines: list[RawLine] = []
    after_blank = True
    for raw in text.splitlines():
        match = _MARKDOWN_HEADING.match(raw) if markdown else None
        if match:
            lines.append(RawLine(text=match.group(2), heading_level=len(match.group(1))))
        elif raw.strip():
            lines.append(RawLine(text=raw.strip(), starts_paragraph=after_blank))
        after_blank = not raw.strip() or match is not None
    return lines
