"""Citations a reader can check: each quote found verbatim in the stored text of its page.

Every answerer cites through `cite`, so none can cite a page that does not hold its quote, and
numbers its citations with `Numbering`, so the markers `[n]` in every answer mean the same thing.
The offsets let a client highlight the quote on the page that `/v1/documents/{id}/pages/{n}`
returns.
"""

from __future__ import annotations

import re
from typing import Protocol

from index.retrieve import Hit
from ingest.models import Page
from service.answering import Citation

_MARKER = re.compile(r"\[(\d+)\]")


class PageSource(Protocol):
    """Where the stored text of pages is read from (`index.records.Records`)."""

    def page(self, doc_id: str, number: int) -> Page | None: ...


def locate(quote: str, text: str, near: int | None = None) -> tuple[int, int] | None:
    """The offsets of `quote` in `text`: of the occurrence starting nearest `near` when the
    caller knows where to expect it (a sentence can recur on a page), else of the first."""
    if not quote:
        return None
    starts = []
    start = text.find(quote)
    while start >= 0:
        starts.append(start)
        start = text.find(quote, start + 1)
    if not starts:
        return None
    first = starts[0] if near is None else min(starts, key=lambda s: (abs(s - near), s))
    return first, first + len(quote)


def cite(
    pages: PageSource,
    hit: Hit,
    page_number: int,
    quote: str,
    score: float,
    *,
    answer_span: tuple[int, int],
    near: int | None = None,
) -> Citation | None:
    """The citation of `quote` on page `page_number` of the passage's document, supporting
    the sentence at `answer_span` of the answer text, or None when the stored page does not
    hold the quote verbatim."""
    chunk = hit.chunk
    page = pages.page(chunk.doc_id, page_number)
    found = None if page is None else locate(quote, page.text, near)
    if page is None or found is None:
        return None
    return Citation(
        doc_id=chunk.doc_id,
        doc=hit.file_name,
        title=hit.title,
        page=page_number,
        page_label=page.label,
        quote=quote,
        quote_start=found[0],
        quote_end=found[1],
        chunk_id=chunk.chunk_id,
        score=score,
        answer_start=answer_span[0],
        answer_end=answer_span[1],
    )


def cite_in_chunk(
    pages: PageSource,
    hit: Hit,
    start: int,
    quote: str,
    score: float,
    *,
    answer_span: tuple[int, int],
) -> Citation | None:
    """`cite` for a quote that starts at `start` of the passage's chunk: on the page that
    offset stands on, looked for near where the chunk places it. (A chunk records where its
    later pages begin, not where on its first page it starts.)"""
    chunk = hit.chunk
    page = chunk.page_at(start)
    pages_in = page - chunk.page_start
    near = start - chunk.page_breaks[pages_in - 1] if pages_in > 0 else None
    return cite(pages, hit, page, quote, score, answer_span=answer_span, near=near)


class Numbering:
    """Numbers citations in the order an answer first uses them; citing the same quote on the
    same page again reuses its number."""

    def __init__(self) -> None:
        self.citations: list[Citation] = []

    def number(self, citation: Citation) -> int:
        key = (citation.doc_id, citation.page, citation.quote)
        for n, known in enumerate(self.citations, start=1):
            if (known.doc_id, known.page, known.quote) == key:
                return n
        self.citations.append(citation)
        return len(self.citations)


def markers(text: str) -> list[int]:
    """The citation numbers an answer's text refers to, in order of appearance."""
    return [int(number) for number in _MARKER.findall(text)]
