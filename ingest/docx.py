"""Word documents with python-docx; pages follow the page breaks Word recorded when it saved.

A DOCX has no fixed pages. Word writes `lastRenderedPageBreak` markers where its own layout broke
pages at the last save, and explicit page breaks are always there: together they give the page
numbers a reader sees in Word, which is what a citation must point to.
"""

from __future__ import annotations

import io
import re
import zipfile

import docx
from docx.oxml.ns import qn
from docx.table import Table
from docx.text.paragraph import Paragraph

from ingest.raw import LoadError, RawDocument, RawLine, RawPage

_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)
_TEXT, _TAB, _BREAK, _RENDERED_BREAK = (
    qn("w:t"),
    qn("w:tab"),
    qn("w:br"),
    qn("w:lastRenderedPageBreak"),
)
_BREAK_TYPE = qn("w:type")


class _Pager:
    """Collects lines into pages as paragraphs are read in document order."""

    def __init__(self) -> None:
        self.pages: list[list[RawLine]] = [[]]

    def add(self, text: str, level: int | None = None) -> None:
        if text.strip():
            self.pages[-1].append(
                RawLine(text=text.strip(), heading_level=level, starts_paragraph=True)
            )

    def new_page(self) -> None:
        if self.pages[-1]:
            self.pages.append([])


def load_docx(data: bytes) -> RawDocument:
    if not data:
        raise LoadError("the file is empty")
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise LoadError("it is not a readable Word document (damaged, or not a .docx)") from exc
    pager = _Pager()
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            _read_paragraph(block, pager)
        elif isinstance(block, Table):
            for row in block.rows:
                for cell in row.cells:
                    pager.add(cell.text)
    if not any(pager.pages):
        raise LoadError("the Word document has no text")
    title = (document.core_properties.title or "").strip() or None
    return RawDocument(
        pages=tuple(
            RawPage(number=number, lines=tuple(lines))
            for number, lines in enumerate(pager.pages, start=1)
        ),
        title=title,
        printed_pages=False,
    )


def _read_paragraph(paragraph: Paragraph, pager: _Pager) -> None:
    level = _heading_level(paragraph.style.name if paragraph.style is not None else "")
    text = ""
    for node in paragraph._element.iter():
        if node.tag == _RENDERED_BREAK or (node.tag == _BREAK and node.get(_BREAK_TYPE) == "page"):
            pager.add(text, level)
            text = ""
            pager.new_page()
        elif node.tag == _TEXT:
            text += node.text or ""
        elif node.tag == _TAB:
            text += " "
    pager.add(text, level)


def _heading_level(style: str) -> int | None:
    if style.lower() == "title":
        return 1
    match = _HEADING_STYLE.match(style)
    return int(match.group(1)) if match else None
