"""Sentence boundaries with sentencex, as character spans; a sentence never crosses a newline,
so it never crosses a block or a page."""

from __future__ import annotations

from collections.abc import Iterator

import sentencex

_LANGUAGE = "en"


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in `text`, whitespace trimmed, in order."""
    spans: list[tuple[int, int]] = []
    position = 0
    for block in text.split("\n"):
        spans.extend((position + s, position + e) for s, e in _block_spans(block))
        position += len(block) + 1
    return spans


def _block_spans(block: str) -> Iterator[tuple[int, int]]:
    cursor = 0
    for sentence in sentencex.segment(_LANGUAGE, block):
        stripped = sentence.strip()
        if not stripped:
            continue
        begin = block.find(stripped, cursor)
        if begin < 0:  # the segmenter altered the text; keep the rest of the block whole
            break
        cursor = begin + len(stripped)
        yield begin, cursor
    tail = block[cursor:]
    if tail.strip():
        yield cursor + len(tail) - len(tail.lstrip()), len(block.rstrip())
