"""HTML: the visible text, read with a real parser (BeautifulSoup over lxml), as one page."""

from __future__ import annotations

from bs4 import BeautifulSoup, Tag

from ingest.plaintext import decode_text
from ingest.raw import LoadError, RawDocument, RawLine, RawPage

_INVISIBLE = ("script", "style", "noscript", "template", "head", "nav", "svg", "iframe", "object")
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_BLOCKS = (
    "p",
    "li",
    "dt",
    "dd",
    "td",
    "th",
    "pre",
    "blockquote",
    "figcaption",
    "caption",
    "address",
    "summary",
    *_HEADINGS,
)


def load_html(data: bytes) -> RawDocument:
    soup = BeautifulSoup(decode_text(data), "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    for element in soup.find_all(_INVISIBLE):
        element.decompose()
    for element in soup.find_all(_hidden):
        element.decompose()
    root = soup.body or soup
    lines = [line for element in root.find_all(_BLOCKS) if (line := _line(element)) is not None]
    if not lines:
        # Pages without block markup still have visible text worth reading.
        lines = [
            RawLine(text=text, starts_paragraph=True)
            for text in root.get_text("\n", strip=True).splitlines()
        ]
    if not lines:
        raise LoadError("the HTML page has no visible text")
    return RawDocument(
        pages=(RawPage(number=1, lines=tuple(lines)),), title=title or None, printed_pages=False
    )


def _hidden(element: Tag) -> bool:
    style = str(element.get("style", "")).replace(" ", "").lower()
    return (
        element.has_attr("hidden")
        or element.get("aria-hidden") == "true"
        or "display:none" in style
        or "visibility:hidden" in style
    )


def _line(element: Tag) -> RawLine | None:
    if element.find_parent(_BLOCKS) is not None:
        return None  # its text is read with the enclosing block
    text = element.get_text(" ", strip=True)
    if not text:
        return None
    return RawLine(text=text, heading_level=_HEADINGS.get(element.name), starts_paragraph=True)
