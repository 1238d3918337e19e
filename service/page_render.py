"""What PDFium does for the page viewer: a page as an image, and the boxes of a quote on it.

These functions run in the worker processes of `service.pdf_workers` (PDFium is not
thread-safe), so they take and return plain, picklable values and import nothing heavy.

Images are 8-bit palette PNGs. Measured on the reference PDF at 1240 px (bench/page_render.py):
quantising to 256 colours and encoding takes 30-45 ms and gives a third of the bytes of a
full-colour PNG, which takes longer; lossless WebP of the same palette image is 10-35% smaller
but takes twice as long (and up to 140 ms a page on a busy machine), the larger part of the
150 ms a page drawn cold may take; lossy WebP at quality 90 is two to three times the size and
blurs small type. 256 colours hold the grey ramp of anti-aliased text exactly; only photographs
lose some shading.

Highlight boxes are fractions of the displayed page (top-left origin), so a client scales them to
whatever size it shows the image at. PDFium's page-to-device transform makes them, which applies
the page's crop box and its /Rotate exactly as rendering does.
"""

from __future__ import annotations

import ctypes
import io
import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image

from service.page_align import Alignment

MEDIA_TYPE = "image/png"
_COLOURS = 256
_PNG_LEVEL = 6
"""zlib's default: on palette images 15-20% smaller than level 3 for 5-15 ms more; level 9
saves 2% more for ten times the time."""
_DEVICE = 1_000_000
"""The device size the page is mapped onto for box fractions: 6 decimal places."""
_LINE_OVERLAP = 0.5
"""Share of the smaller of two heights two boxes must overlap vertically to be one line."""


class PageRenderError(Exception):
    """PDFium cannot open the file or draw the page; the message says which."""


@dataclass(frozen=True)
class Box:
    """A rectangle as fractions of the displayed page's width and height, from its top left."""

    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class PageBoxes:
    width_pt: float
    """The displayed page's width in points (after its crop box and rotation)."""
    height_pt: float
    boxes: tuple[Box, ...]
    """One per line of the quote, in reading order; empty when PDFium's text of the page does
    not align with the stored text there."""


def render_png(path: Path, number: int, width: int) -> bytes:
    """Page `number` (1-based) of the PDF at `path`, `width` pixels wide, as a PNG."""
    with _Opened(path) as pdf:
        page = _page(pdf, number)
        try:
            page_width = page.get_width()
            # render() sizes the bitmap with ceil(points * scale); the scale is nudged down until
            # that gives exactly `width`, not width + 1 from a rounding error.
            scale = width / page_width
            while math.ceil(page_width * scale) > width:
                scale = math.nextafter(scale, 0.0)
            bitmap = page.render(scale=scale, rev_byteorder=True)
            try:
                image = bitmap.to_pil()
            finally:
                bitmap.close()
        except pdfium.PdfiumError as exc:
            raise PageRenderError(f"PDFium cannot draw page {number}: {exc}") from exc
        finally:
            page.close()
    palette = image.quantize(_COLOURS, method=Image.Quantize.FASTOCTREE)
    out = io.BytesIO()
    palette.save(out, format="PNG", compress_level=_PNG_LEVEL)
    return out.getvalue()


def page_boxes(path: Path, number: int, stored_text: str, start: int, end: int) -> PageBoxes:
    """The boxes of `stored_text[start:end]` (the page's stored text, as the index holds it) on
    page `number` of the PDF at `path`."""
    with _Opened(path) as pdf:
        page = _page(pdf, number)
        try:
            width_pt, height_pt = page.get_size()
            textpage = page.get_textpage()
            try:
                chars = _characters(textpage)
                span = Alignment(stored_text, chars).span(start, end)
                rects = [] if span is None else _line_rects(textpage, chars, *span)
            finally:
                textpage.close()
            boxes = tuple(_fractions(page, rect) for rect in rects)
        except pdfium.PdfiumError as exc:
            raise PageRenderError(f"PDFium cannot read the text of page {number}: {exc}") from exc
        finally:
            page.close()
    return PageBoxes(round(width_pt, 3), round(height_pt, 3), boxes)


class _Opened:
    """A PDF opened from its path, closed on leaving; PDFium's errors as PageRenderError."""

    def __init__(self, path: Path) -> None:
        try:
            self.pdf = pdfium.PdfDocument(path)
        except (pdfium.PdfiumError, OSError) as exc:
            raise PageRenderError(f"PDFium cannot open {path.name}: {exc}") from exc

    def __enter__(self) -> pdfium.PdfDocument:
        return self.pdf

    def __exit__(self, *_: object) -> None:
        self.pdf.close()


def _page(pdf: pdfium.PdfDocument, number: int) -> pdfium.PdfPage:
    if not 1 <= number <= len(pdf):
        raise PageRenderError(f"the PDF has {len(pdf)} pages; there is no page {number}")
    return pdf[number - 1]


def _characters(textpage: pdfium.PdfTextPage) -> str:
    """PDFium's characters of the page, one per index of its character array (the indices
    `get_charbox` takes; `get_text_range` can differ from them around surrogate pairs)."""
    chars = []
    for index in range(textpage.count_chars()):
        code = pdfium_c.FPDFText_GetUnicode(textpage, index)
        chars.append(chr(code) if 0 < code <= 0x10FFFF else "\ufffd")
    return "".join(chars)


_Rect = tuple[float, float, float, float]
"""left, bottom, right, top in page space (points, bottom-left origin)."""


def _line_rects(textpage: pdfium.PdfTextPage, chars: str, first: int, last: int) -> list[_Rect]:
    """The union of the character boxes of `chars[first:last + 1]`, one rectangle per line:
    a character that does not overlap the line so far vertically, or stands left of where the
    line began, starts a new one. Spaces, line breaks PDFium generated and empty boxes are left
    out, so a line's rectangle ends at its last glyph."""
    rects: list[_Rect] = []
    current: list[float] | None = None
    for index in range(first, last + 1):
        char = chars[index]
        if char.isspace() or unicodedata.category(char) == "Zs":
            continue
        if pdfium_c.FPDFText_IsGenerated(textpage, index) == 1:
            continue
        try:
            left, bottom, right, top = textpage.get_charbox(index, loose=True)
        except pdfium.PdfiumError:
            continue
        if right <= left or top <= bottom:
            continue
        if current is not None and _same_line(current, left, bottom, top):
            current[0] = min(current[0], left)
            current[1] = min(current[1], bottom)
            current[2] = max(current[2], right)
            current[3] = max(current[3], top)
            continue
        if current is not None:
            rects.append((current[0], current[1], current[2], current[3]))
        current = [left, bottom, right, top]
    if current is not None:
        rects.append((current[0], current[1], current[2], current[3]))
    return rects


def _same_line(line: list[float], left: float, bottom: float, top: float) -> bool:
    overlap = min(line[3], top) - max(line[1], bottom)
    smaller = min(line[3] - line[1], top - bottom)
    return overlap >= _LINE_OVERLAP * smaller and left >= line[0] - (line[3] - line[1])


def _fractions(page: pdfium.PdfPage, rect: _Rect) -> Box:
    left, bottom, right, top = rect
    xs, ys = [], []
    for x, y in ((left, top), (right, bottom)):
        device_x, device_y = ctypes.c_int(), ctypes.c_int()
        pdfium_c.FPDF_PageToDevice(
            page, 0, 0, _DEVICE, _DEVICE, 0, x, y, ctypes.byref(device_x), ctypes.byref(device_y)
        )
        xs.append(min(max(device_x.value / _DEVICE, 0.0), 1.0))
        ys.append(min(max(device_y.value / _DEVICE, 0.0), 1.0))
    return Box(
        left=round(min(xs), 6),
        top=round(min(ys), 6),
        width=round(max(xs) - min(xs), 6),
        height=round(max(ys) - min(ys), 6),
    )
