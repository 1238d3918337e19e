"""A quote a client names on a page, by offsets or by its text, as offsets in the stored text."""

from __future__ import annotations

import re

from service.citations import locate
from service.errors import InvalidRequestError


def quote_span(
    text: str, start: int | None, end: int | None, quote: str | None
) -> tuple[int, int] | None:
    """`text[start:end]`, checked, or where `quote` stands in `text`: verbatim first (as a
    citation's quote does), else with any run of whitespace standing for any other (a deep link
    that went through an email may have lost a line break). None when the quote is not there."""
    if quote is not None:
        if start is not None or end is not None:
            raise InvalidRequestError("give the quote by start and end, or by quote, not both")
        return locate(quote, text) or _loosely(quote, text)
    if start is None or end is None:
        raise InvalidRequestError(
            "give the quote by start and end (a citation's quote_start and quote_end), or by quote"
        )
    if not start < end <= len(text):
        raise InvalidRequestError(
            f"start {start} and end {end} are not a quote of this page: its text has "
            f"{len(text)} characters, and start must be less than end"
        )
    return start, end


def _loosely(quote: str, text: str) -> tuple[int, int] | None:
    words = quote.split()
    if not words:
        return None
    found = re.search(r"\s+".join(re.escape(word) for word in words), text)
    return found.span() if found else None
