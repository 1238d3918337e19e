"""From offsets in a page's stored text to the characters PDFium reads on that page.

A citation's `quote_start`/`quote_end` index the page's *stored* text, which ingestion cleaned
(`ingest.cleaning`, `ingest.pdf`): running headers, footers and page numbers removed, words
hyphenated at a line end re-joined, footnote marks dropped, dot leaders turned into "…", lines
joined and whitespace collapsed, NFC applied. PDFium's character array for the page has none of
that done, so the offsets cannot be used on it directly.

Both texts are reduced to a *skeleton*: every character decomposed (NFKD, so "é" and "e"+"◌́"
agree, "…" becomes "...", "ﬁ" becomes "fi"), with whitespace, hyphens, control and format
characters and combining marks left out, and each skeleton character remembering the offset it
came from. Cleaning only ever removes characters from the skeleton's point of view, so the stored
skeleton is (nearly always) a subsequence of PDFium's. The two are aligned the way patience diff
aligns files: runs of characters found exactly once in each text pin the alignment, the longest
chain of anchors in order is kept, the gaps between them are searched the same way for shorter
runs, and what is left is aligned by the cheapest edit (`difflib` for the rare large gap). That
takes milliseconds a page, where aligning whole pages with `difflib` took a quarter of a second.
"""

from __future__ import annotations

import difflib
import unicodedata
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass

ANCHORS = (12, 6, 3)
"""Skeleton characters in an anchor, longest first: 12 are unique on a page yet short enough
that a footnote mark or a changed dot leader leaves anchors on both sides of it; the gaps
between those are searched for shorter runs unique within the gap."""
_HYPHENS = frozenset("-\u00ad\u2010\u2011\x02\ufffe")
"""Hyphens cleaning may drop or add, and PDFium's marks for a hyphen at a line end."""
_IGNORED_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Mn", "Me", "Zs", "Zl", "Zp"})
_EXACT_GAP_PRODUCT = 40_000
"""Gaps up to this many characters squared are aligned exactly (a few milliseconds)."""
_SKIP_TARGET = 1
_SKIP_SOURCE = 24
"""Costs of the edit a gap is aligned by: cleaning removes characters and (nearly) never adds
any, so leaving a character of the stored text unpaired costs as much as skipping two dozen of
PDFium's, which a dot leader or a footnote mark takes."""
_MAX_GAP_PRODUCT = 4_000_000
"""Gaps larger than this (in characters squared) are left unaligned: difflib's time grows with
the product, and a gap that large means the texts differ there, not that they are offset."""
_MIN_COVERAGE = 0.8
"""Share of a span's skeleton that must align for the span to count as found. Cleaning only
removes characters, so a span of stored text aligns whole; text PDFium does not read there
still pairs some of its letters with look-alikes scattered over the page."""
_MAX_STRETCH = 1.25
_STRETCH_SLACK = 8
"""The target's span may hold at most this many times the letters and digits of the source's,
plus a few: footnote marks cleaning removed fit, a span drawn across half the page does not.
(Punctuation is not counted: a dot leader is "…" in one and dozens of dots in the other.)"""
_STRAY_SLACK = 24
"""How far (in skeleton characters) an aligned character at a span's edge may stand from its
neighbour beyond what the stored text has between them before it is taken as a stray match."""


@dataclass(frozen=True)
class Skeleton:
    text: str
    offsets: tuple[int, ...]
    """For each skeleton character, the offset in the source text it came from."""


def skeleton(text: str) -> Skeleton:
    """The characters of `text` that cleaning never adds or removes, with their offsets."""
    chars: list[str] = []
    offsets: list[int] = []
    for offset, char in enumerate(text):
        if char in _HYPHENS or char.isspace():
            continue
        if char.isascii():
            if char.isprintable():
                chars.append(char)
                offsets.append(offset)
            continue
        for part in unicodedata.normalize("NFKD", char):
            if part in _HYPHENS or unicodedata.category(part) in _IGNORED_CATEGORIES:
                continue
            chars.append(part)
            offsets.append(offset)
    return Skeleton("".join(chars), tuple(offsets))


class Alignment:
    """Which character of `target` each character of `source` is, where they can be paired."""

    def __init__(self, source: str, target: str) -> None:
        self.source = skeleton(source)
        self.target = skeleton(target)
        self._pairs = _align(self.source.text, self.target.text)

    def span(self, start: int, end: int) -> tuple[int, int] | None:
        """The offsets in `target` of the first and the last character (inclusive) that
        `source[start:end]` aligns with, or None when too little of it aligns."""
        first = bisect_left(self.source.offsets, start)
        last = bisect_left(self.source.offsets, end)
        if first >= last:
            return None
        mapped = [(i, self._pairs[i]) for i in range(first, last) if self._pairs[i] >= 0]
        if len(mapped) < _MIN_COVERAGE * (last - first):
            return None
        mapped = _without_strays(mapped)
        wanted = _alphanumeric(self.source.text[first:last])
        got = _alphanumeric(self.target.text[mapped[0][1] : mapped[-1][1] + 1])
        if got > _MAX_STRETCH * wanted + _STRETCH_SLACK:
            return None
        return self.target.offsets[mapped[0][1]], self.target.offsets[mapped[-1][1]]


def _alphanumeric(text: str) -> int:
    return sum(1 for char in text if char.isalnum())


def _align(a: str, b: str) -> list[int]:
    """For each character of `a`, the index of the character of `b` it pairs with, or -1."""
    pairs = [-1] * len(a)
    _align_range(a, b, 0, len(a), 0, len(b), pairs, ANCHORS)
    return pairs


def _align_range(
    a: str, b: str, a0: int, a1: int, b0: int, b1: int, pairs: list[int], sizes: tuple[int, ...]
) -> None:
    """Pair `a[a0:a1]` with `b[b0:b1]`: by unique runs of `sizes[0]` characters, then each gap
    between them by shorter runs, unique within the gap, and the gaps left without any exactly."""
    if a0 >= a1 or b0 >= b1:
        return
    if not sizes:
        _align_gap(a, b, a0, a1, b0, b1, pairs)
        return
    size, shorter = sizes[0], sizes[1:]
    previous_a, previous_b = a0, b0
    for i, j in [*_anchors(a[a0:a1], b[b0:b1], size, a0, b0), (a1, b1)]:
        if i < previous_a or j < previous_b:
            # Overlaps the run just paired: on the same diagonal it extends that run.
            if j - i == previous_b - previous_a and i + size > previous_a:
                for k in range(previous_a, i + size):
                    pairs[k] = k + j - i
                previous_a, previous_b = i + size, j + size
            continue
        _align_range(a, b, previous_a, i, previous_b, j, pairs, shorter)
        run = min(size, a1 - i, b1 - j)
        for k in range(run):
            pairs[i + k] = j + k
        previous_a, previous_b = i + run, j + run


def _anchors(a: str, b: str, size: int, a0: int, b0: int) -> list[tuple[int, int]]:
    """Runs of `size` characters found exactly once in `a` and once in `b`, as positions
    (i + a0, j + b0), the longest chain of them that is in order in both."""
    in_a = Counter(a[i : i + size] for i in range(len(a) - size + 1))
    in_b: dict[str, int] = {}
    repeated: set[str] = set()
    for j in range(len(b) - size + 1):
        run = b[j : j + size]
        if run in in_b:
            repeated.add(run)
        in_b[run] = j
    candidates = [
        (i + a0, in_b[run] + b0)
        for i in range(len(a) - size + 1)
        if in_a[run := a[i : i + size]] == 1 and run in in_b and run not in repeated
    ]
    return _longest_increasing(candidates)


def _longest_increasing(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The longest subsequence of `pairs` (sorted by i) whose j increase too (patience sort)."""
    tails: list[int] = []  # tails[k]: j of the smallest tail of a chain of length k + 1
    tail_index: list[int] = []
    before: list[int] = []
    for index, (_, j) in enumerate(pairs):
        k = bisect_left(tails, j)
        if k == len(tails):
            tails.append(j)
            tail_index.append(index)
        else:
            tails[k] = j
            tail_index[k] = index
        before.append(tail_index[k - 1] if k else -1)
    chain: list[tuple[int, int]] = []
    index = tail_index[-1] if tail_index else -1
    while index >= 0:
        chain.append(pairs[index])
        index = before[index]
    return chain[::-1]


def _align_gap(a: str, b: str, a0: int, a1: int, b0: int, b1: int, pairs: list[int]) -> None:
    """Pair the characters of `a[a0:a1]` with those of `b[b0:b1]`: by the cheapest edit where the
    gap is small, as nearly all are; by difflib's faster heuristic where it is not."""
    cells = (a1 - a0) * (b1 - b0)
    if cells > _MAX_GAP_PRODUCT:
        return
    if cells <= _EXACT_GAP_PRODUCT:
        # Before the first anchor the target may have a header more, after the last a footer.
        edits = _cheapest_edit(a[a0:a1], b[b0:b1], free_start=a0 == 0, free_end=a1 == len(a))
        for i, j in edits:
            pairs[a0 + i] = b0 + j
        return
    matcher = difflib.SequenceMatcher(None, a[a0:a1], b[b0:b1], autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            pairs[a0 + block.a + k] = b0 + block.b + k


def _cheapest_edit(a: str, b: str, *, free_start: bool, free_end: bool) -> list[tuple[int, int]]:
    """The pairs (i, j) of equal characters of the cheapest edit of `b` into `a`, where a
    character of `b` left out costs `_SKIP_TARGET` and one of `a` `_SKIP_SOURCE`, and `b` may
    begin or end with characters left out for free (a header, a footer). Unlike a longest
    common subsequence, this keeps the pairs together: an "a" of the quote is not paired with
    one in the header when one stands beside the rest."""
    rows = [[0 if free_start else j * _SKIP_TARGET for j in range(len(b) + 1)]]
    for i, char in enumerate(a, start=1):
        above, row = rows[-1], [i * _SKIP_SOURCE]
        for j, other in enumerate(b, start=1):
            best = min(above[j] + _SKIP_SOURCE, row[j - 1] + _SKIP_TARGET)
            if char == other and above[j - 1] < best:
                best = above[j - 1]
            row.append(best)
        rows.append(row)
    i, j = len(a), len(b)
    if free_end:
        last = rows[-1]
        j = min(range(len(b) + 1), key=lambda k: (last[k], k))
    found = []
    while i and j:
        cost = rows[i][j]
        if a[i - 1] == b[j - 1] and cost == rows[i - 1][j - 1]:
            found.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif cost == rows[i - 1][j] + _SKIP_SOURCE:
            i -= 1
        else:
            j -= 1
    return found[::-1]


def _without_strays(mapped: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`mapped` without the pairs at either end that jumped far in the target: a character the
    gap alignment paired with a look-alike in a header, not with its own."""
    start, end = 0, len(mapped)
    while end - start > 1 and _jump(mapped[start], mapped[start + 1]):
        start += 1
    while end - start > 1 and _jump(mapped[end - 2], mapped[end - 1]):
        end -= 1
    return mapped[start:end]


def _jump(left: tuple[int, int], right: tuple[int, int]) -> bool:
    return (right[1] - left[1]) - (right[0] - left[0]) > _STRAY_SLACK
