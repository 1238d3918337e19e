"""Table rows in extracted text: a row's label and its figures, and the line of years above them.

PDFium gives a financial statement's row as one line, its label and then its figures
("Inventories (509) (387) 57"); a label too long for its column wraps onto a line of its own
above the figures. Cleaning ends a block after every row that stands among rows, so that rows
never run into one another; chunking keeps each row whole, and a chunk that continues a table
carries its column header ("(Millions) 2018 2017 2016") in its heading path.
"""

from __future__ import annotations

import re
from enum import Enum

_FIGURE = re.compile(r"\(?[-+]?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?\)?%?|[—–-]")
"""One cell: 1,577 / (1,577) / $5,363 / 12.5% / a dash for nil."""
_DETACHED = frozenset({"$", "%"})
"""Currency and percent signs that PDFium sets apart from their figure."""
_YEAR = re.compile(r"(?:19|20)\d\d")
_DAY = re.compile(r"\d{1,2},?")
_MIN_ROW_FIGURES = 2
"""One trailing number is as likely a year in a sentence ("... in 2022") as a one-column row."""
_MAX_HEADER_WORDS = 20
_MIN_HEADER_YEARS = 2
_SENTENCE_END = (".", "!", "?", ":", ";")
_FULL_STOP = (".", "!", "?")
"""What ends prose; a colon more often closes a table's own label ("Adjustments to reconcile net
income to net cash provided by operating activities:") than an introduction to the next table."""


def closes_row(text: str) -> bool:
    """Whether a line (or block) ends a table row: figures in two or more columns at its end,
    or nothing but figures (the figures of a row whose label wrapped onto the line above). A
    line of nothing but a year is part of a column header stacked over several lines."""
    tokens = [token for token in text.split() if token not in _DETACHED]
    figures = 0
    for token in reversed(tokens):
        if not _FIGURE.fullmatch(token):
            break
        figures += 1
    if figures == len(tokens) and all(_YEAR.fullmatch(token) for token in tokens):
        return figures >= _MIN_HEADER_YEARS
    return figures >= _MIN_ROW_FIGURES or (figures > 0 and figures == len(tokens))


def is_column_header(text: str) -> bool:
    """Whether a line (or block) heads the columns of a table with years: "(Millions) 2018 2017
    2016", "December 31, 2022 2021", "In millions May 31, 2020 May 26, 2019"."""
    if not _YEAR.search(text) or text.rstrip().endswith(_SENTENCE_END):
        return False
    tokens = text.split()
    if len(tokens) > _MAX_HEADER_WORDS:
        return False
    years = sum(1 for token in tokens if _YEAR.fullmatch(token))
    others = [t for t in tokens if t[:1].isdigit() and not _YEAR.fullmatch(t)]
    return years >= _MIN_HEADER_YEARS and all(_DAY.fullmatch(token) for token in others)


class TableLine(Enum):
    HEADER = "header"
    """The years over a table's columns."""
    ROW = "row"
    LABEL = "label"
    """Words without figures that do not end a sentence: a table's labels ("Current assets",
    "Cash flows from operating activities:"), a heading in body type."""
    PROSE = "prose"
    """A finished sentence or paragraph; it ends the table it follows."""


def table_line(text: str) -> TableLine:
    if is_column_header(text):
        return TableLine.HEADER
    if closes_row(text):
        return TableLine.ROW
    if text.rstrip().endswith(_FULL_STOP):
        return TableLine.PROSE
    return TableLine.LABEL
