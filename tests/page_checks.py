"""What the page-image tests share: a small report PDF with known lines, and checks of highlight
boxes against PDFium's own character boxes and text, found without the code under test."""

from __future__ import annotations

import io
import re
import struct
from pathlib import Path

import pypdf
import pypdfium2 as pdfium

from service.page_render import Box, PageBoxes
from tests.pdf_factory import write_pdf

HEADER = "Ministry of Foreign Affairs | Annual Report 2025"
PAGE_TWO = (
    "The ministry opened four new embassies this year and",
    "expanded its consular network across the region. The",
    "national energy infra-",
    "structure will be protected by a new agency from 2026.",
)
PAGE_TWO_STORED = (
    "The ministry opened four new embassies this year and expanded its consular network across "
    "the region. The national energy infrastructure will be protected by a new agency from 2026."
)
"""Page 2 as ingest stores it: header and page number gone, lines joined, "infra-" re-joined."""
ACROSS_LINES = "four new embassies this year and expanded its consular network"
ACROSS_LINES_PARTS = ("four new embassies this year and", "expanded its consular network")
HYPHENATED = "energy infrastructure will be protected"
HYPHENATED_PARTS = ("energy infra\ufffe", "structure will be protected")
"""PDFium reads the hyphen at the line end as U+FFFE (and joins the lines there); the highlight
covers the hyphen's glyph too."""
TOLERANCE_PT = 1.0


def write_report(path: Path) -> Path:
    """Four pages, each opening with the running header and closing with "Page n of 4", which
    ingest strips; page 2 holds `PAGE_TWO`."""
    pages = []
    for number in range(1, 5):
        body = PAGE_TWO if number == 2 else (f"Page {number} discusses other matters at length.",)
        pages.append("\n".join([HEADER, *body, f"Page {number} of 4"]))
    return write_pdf(path, pages)


def rotated(source: Path, target: Path, degrees: int = 90) -> Path:
    """`source` with every page's /Rotate set, as a scanner or a landscape export leaves it."""
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(source))
    for page in writer.pages:
        page.rotate(degrees)
    buffer = io.BytesIO()
    writer.write(buffer)
    target.write_bytes(buffer.getvalue())
    return target


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", data[:16]
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def char_boxes(pdf_path: Path, number: int, fragment: str) -> list[Box]:
    """PDFium's tight boxes of the characters of `fragment` (its first occurrence on the page,
    found by PDFium's own search), as fractions of an unrotated page from its top left."""
    pdf = pdfium.PdfDocument(pdf_path)
    try:
        page = pdf[number - 1]
        width, height = page.get_size()
        textpage = page.get_textpage()
        found = textpage.search(fragment, match_case=True).get_next()
        assert found is not None, f"PDFium finds no {fragment!r} on page {number}"
        index, count = found
        boxes = []
        for char in range(index, index + count):
            if textpage.get_text_range(char, 1).isspace():
                continue
            left, bottom, right, top = textpage.get_charbox(char)
            boxes.append(
                Box(left / width, 1 - top / height, (right - left) / width, (top - bottom) / height)
            )
        return boxes
    finally:
        pdf.close()


def assert_boxes_cover(found: PageBoxes, lines: list[list[Box]]) -> None:
    """One highlight box per line; each holds every character box of its line and spans no
    further left or right than those characters (loose boxes are taller than tight ones)."""
    assert len(found.boxes) == len(lines), found.boxes
    dx, dy = TOLERANCE_PT / found.width_pt, TOLERANCE_PT / found.height_pt
    for box, chars in zip(found.boxes, lines, strict=True):
        for char in chars:
            assert (
                box.left - dx <= char.left and char.left + char.width <= box.left + box.width + dx
            )
            assert box.top - dy <= char.top and char.top + char.height <= box.top + box.height + dy
        assert abs(box.left - min(c.left for c in chars)) <= 2 * dx
        assert abs(box.left + box.width - max(c.left + c.width for c in chars)) <= 2 * dx
        assert box.height <= 3 * max(c.height for c in chars)


def text_under(pdf_path: Path, number: int, boxes: PageBoxes) -> str:
    """What PDFium reads inside the boxes (of an unrotated page), line after line."""
    pdf = pdfium.PdfDocument(pdf_path)
    try:
        page = pdf[number - 1]
        width, height = page.get_size()
        textpage = page.get_textpage()
        return "\n".join(
            textpage.get_text_bounded(
                box.left * width,
                (1 - box.top - box.height) * height,
                (box.left + box.width) * width,
                (1 - box.top) * height,
            )
            for box in boxes.boxes
        )
    finally:
        pdf.close()


def letters(text: str) -> str:
    return re.sub(r"[\W_]", "", text).casefold()


def assert_reads_back(quote: str, under: str) -> None:
    """The letters and digits of `quote` are those under its boxes, in order, where footnote
    marks and nothing much else may stand between them."""
    wanted, got = letters(quote), letters(under)
    position = 0
    for char in wanted:
        position = got.find(char, position) + 1
        assert position, f"{quote!r} is not under its boxes, which hold {under!r}"
    assert len(got) <= len(wanted) * 1.25 + 8, f"the boxes of {quote!r} hold {under!r}"
