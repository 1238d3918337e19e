"""PDF loading with pypdfium2: one RawPage per physical page, lines with font size and weight.

pypdfium2 was chosen over pypdf for speed (hundreds of pages per second against pypdf's tens on
report PDFs) and because PDFium opens AES-encrypted files with an empty password on its own.
Typography is read only where it is needed (line starts and digit runs), which keeps the per-char
ctypes calls from dominating parse time.
"""

from __future__ import annotations

import ctypes
import re

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from ingest.raw import LoadError, RawDocument, RawLine, RawPage

_BOLD_WEIGHT = 600
_SUPERSCRIPT_RATIO = 0.85
_DIGIT_RUN = re.compile(r"\d+")
# PDFium reports a hyphen it judged to be a soft line-end hyphen as U+0002, or as U+FFFE with
# the line break already removed ("infra\ufffestructure").
_SOFT_HYPHEN = "\x02"
_JOINED_HYPHEN = re.compile("(.?)\ufffe(.?)")


def load_pdf(data: bytes) -> RawDocument:
    if not data:
        raise LoadError("the file is empty")
    if b"%PDF-" not in data[:1024]:
        raise LoadError("it is not a PDF (no %PDF header; is the extension wrong?)")
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise LoadError(_open_failure(exc)) from exc
    try:
        if b"%%EOF" not in data[-2048:]:
            # PDFium rebuilds a cross-reference table for a cut-off file and shows what survived;
            # a report silently missing its last pages would then be cited as complete.
            raise LoadError(
                "the PDF is truncated (no end-of-file marker); re-export or re-download it"
            )
        title = (pdf.get_metadata_value("Title") or "").strip() or None
        pages = tuple(_read_page(pdf, index) for index in range(len(pdf)))
    finally:
        pdf.close()
    if not pages:
        raise LoadError("the PDF has no pages")
    return RawDocument(pages=pages, title=title)


def _open_failure(exc: pdfium.PdfiumError) -> str:
    if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
        return (
            "the PDF is password-protected; Chancery opens only PDFs with no or an empty password"
        )
    if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_SECURITY:
        return "the PDF uses an unsupported security handler"
    return "the PDF is damaged and cannot be opened (truncated or not really a PDF)"


def _read_page(pdf: pdfium.PdfDocument, index: int) -> RawPage:
    page = pdf[index]
    textpage = page.get_textpage()
    try:
        text = textpage.get_text_range()
        lines = _lines(textpage, text)
    finally:
        textpage.close()
        page.close()
    label = pdf.get_page_label(index) or None
    return RawPage(number=index + 1, lines=tuple(lines), label=label)


def _lines(textpage: pdfium.PdfTextPage, text: str) -> list[RawLine]:
    lines: list[RawLine] = []
    position = 0
    for raw in text.split("\r\n"):
        start, position = position, position + len(raw) + 2
        line_text = _JOINED_HYPHEN.sub(_rejoin, raw.replace("\n", " ").replace("\r", " "))
        stripped = line_text.lstrip()
        if not stripped.strip():
            continue
        first = start + len(line_text) - len(stripped)
        size = float(pdfium_c.FPDFText_GetFontSize(textpage, first))
        body = _drop_superscripts(textpage, start, line_text, size)
        body = body.rstrip()
        if body.endswith(_SOFT_HYPHEN):
            body = body[:-1] + "-"
        body = body.replace(_SOFT_HYPHEN, "")
        if lines and line_text.startswith(" "):
            # PDFium breaks the line after a raised footnote mark; the rest of the line begins
            # with the space that followed the mark.
            previous = lines[-1]
            lines[-1] = RawLine(previous.text + " " + body.strip(), previous.size, previous.bold)
            continue
        lines.append(
            RawLine(text=body.strip(), size=round(size, 1), bold=_is_bold(textpage, first))
        )
    return lines


def _rejoin(match: re.Match[str]) -> str:
    """'infra' + 'structure' join; a compound such as 'EU' + 'led' keeps its hyphen."""
    left, right = match.group(1), match.group(2)
    joiner = "" if left.islower() and right.islower() else "-"
    return left + joiner + right


def _drop_superscripts(textpage: pdfium.PdfTextPage, start: int, line: str, size: float) -> str:
    """Remove footnote reference marks: digit runs set smaller than the line they sit in."""
    cuts = [
        match.span()
        for match in _DIGIT_RUN.finditer(line)
        if match.start() > 0
        and line[match.start() - 1] != " "
        and pdfium_c.FPDFText_GetFontSize(textpage, start + match.start())
        < size * _SUPERSCRIPT_RATIO
    ]
    for begin, end in reversed(cuts):
        line = line[:begin] + line[end:]
    return line


def _is_bold(textpage: pdfium.PdfTextPage, index: int) -> bool:
    weight = pdfium_c.FPDFText_GetFontWeight(textpage, index)
    if weight > 0:
        return bool(weight >= _BOLD_WEIGHT)
    name = ctypes.create_string_buffer(128)
    flags = ctypes.c_int()
    pdfium_c.FPDFText_GetFontInfo(textpage, index, name, len(name), ctypes.byref(flags))
    return b"bold" in name.value.lower()
