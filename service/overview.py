"""Questions about a whole document ("What is this report about?", "Summarize the
recommendations"), answered from the parts the document wrote to summarise itself.

Retrieval cannot answer them: the question shares no words with any passage, so it finds
whatever passage the words "document" and "about" happen to match. A report answers them itself,
in its executive summary, introduction, conclusions or recommendations; the opening sentences of
those sections are quoted verbatim and cited like any other sentence. A document without such
headings is summarised by its first sentences of prose.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from index.records import DocumentInfo, Records
from index.retrieve import Hit


class Focus(StrEnum):
    """What an overview question asks for: which kind of section answers it first."""

    SUMMARY = "summary"
    FINDINGS = "findings"
    CONCLUSIONS = "conclusions"
    RECOMMENDATIONS = "recommendations"


_DOC = (
    r"(?:document|doc|report|paper|study|brief|briefing|text|file|note|article|publication"
    r"|analysis|piece|strategy|memo|policy brief)"
)
_THE = r"(?:this|the|that|its)"
_PLEASE = r"(?:(?:can|could|would) you (?:please )?|please )?"
_OF_DOC = rf"(?: (?:of|in|from) {_THE} {_DOC})?"
_MAIN = r"(?:main|key|principal|major|central|most important|core|overall)"
_POINTS = r"(findings|conclusions|recommendations|points|takeaways|messages|arguments|ideas)"
_QUESTIONS = [
    rf"what(?:'s|’s| is| was)? {_THE} {_DOC} (?:all |mainly |mostly |really )?about",
    r"what(?:'s|’s| is) it (?:all )?about",
    rf"what (?:does|did) {_THE} {_DOC} (?:say|cover|discuss|argue|address|deal with|find"
    r"|conclude|recommend|propose|suggest)(?: overall| in (?:short|brief|general))?",
    rf"{_PLEASE}(?:summari[sz]e|sum up|outline|recap) (?:{_THE} )?(?:{_DOC}|(?:{_MAIN} )?"
    rf"{_POINTS}){_OF_DOC}",
    rf"{_PLEASE}(?:give|show) me (?:a |an )?(?:short |brief |quick |general )?(?:summary"
    rf"|overview|synopsis|gist|rundown|tl;?dr){_OF_DOC}",
    rf"(?:a |an )?(?:short |brief |quick )?(?:summary|overview|synopsis|gist){_OF_DOC}",
    rf"what are (?:{_THE} )?{_MAIN} {_POINTS}{_OF_DOC}",
    rf"what are {_THE} {_DOC}(?:'s|’s) (?:{_MAIN} )?{_POINTS}",
    rf"what (?:is|was) {_THE} (?:{_MAIN} )?(?:point|argument|message|idea|purpose|aim|goal"
    rf"|topic|subject|thesis|finding|conclusion) of {_THE} {_DOC}",
]
_OVERVIEW = re.compile(rf"(?:{'|'.join(_QUESTIONS)})", re.IGNORECASE)
_TRAILING = " \t\n?.!"

_NUMBERING = re.compile(r"^(?:(?:\d+(?:\.\d+)*|[ivxlc]+|[a-z])[.)]?|chapter \d+:?|part \w+:?)\s+")
_KINDS: dict[Focus | str, re.Pattern[str]] = {
    Focus.SUMMARY: re.compile(
        r"(?:executive |brief |policy )?summary(?: of (?:key |main )?findings)?|synopsis|abstract"
        r"|overview|at a glance"
    ),
    Focus.FINDINGS: re.compile(r"(?:(?:key|main|major|principal) )?findings"),
    "introduction": re.compile(r"introduction|foreword|preface"),
    Focus.CONCLUSIONS: re.compile(
        r"conclusions?|concluding \w+|final (?:remarks|thoughts)"
        r"|conclusions? and (?:policy )?recommendations"
    ),
    Focus.RECOMMENDATIONS: re.compile(
        r"(?:policy |key |main )?recommendations|conclusions? and (?:policy )?recommendations"
    ),
}
_PREFERENCE: dict[Focus, tuple[Focus | str, ...]] = {
    Focus.SUMMARY: (
        Focus.SUMMARY,
        Focus.FINDINGS,
        "introduction",
        Focus.CONCLUSIONS,
        Focus.RECOMMENDATIONS,
    ),
    Focus.FINDINGS: (Focus.FINDINGS, Focus.SUMMARY, Focus.CONCLUSIONS, "introduction"),
    Focus.CONCLUSIONS: (Focus.CONCLUSIONS, Focus.SUMMARY, Focus.FINDINGS),
    Focus.RECOMMENDATIONS: (Focus.RECOMMENDATIONS, Focus.CONCLUSIONS, Focus.SUMMARY),
}
_SENTENCE_END = (".", "!", '"', "”", "’", ")")
_BATCH = 8
"""Chunks read at a time while looking for a section's first sentences."""
_MIN_WORDS = 6
_MIN_LOWER_SHARE = 0.4
"""Prose is mostly lower-case words; a byline ("Ministry of Foreign Affairs, Astoria Desk, 21
March 2025.") or a title is not."""


def asks_overview(question: str) -> Focus | None:
    """What a question about the whole document asks for; None for any other question."""
    asked = question.strip().rstrip(_TRAILING).strip()
    if _OVERVIEW.fullmatch(asked) is None:
        return None
    lowered = asked.lower()
    if "recommend" in lowered:
        return Focus.RECOMMENDATIONS
    if "conclu" in lowered:
        return Focus.CONCLUSIONS
    if re.search(r"findings|takeaways|points|messages", lowered):
        return Focus.FINDINGS
    return Focus.SUMMARY


@dataclass(frozen=True)
class Opening:
    """A sentence of the document, as a passage (`hit`) of the section it opens and its
    offsets in that passage's text."""

    hit: Hit
    start: int
    end: int

    @property
    def text(self) -> str:
        return self.hit.chunk.text[self.start : self.end]


def openings(
    focus: Focus, passages: Sequence[Hit], records: Records, limit: int = 3
) -> list[Opening]:
    """The sentences that answer an overview question: the opening sentences of the section
    of the document that summarises it as `focus` asks, else its first sentences of prose.
    The document is the one the passages come from, or the top passage's when they come from
    several (a question limited to one document gets passages from it alone)."""
    if not passages:
        return []
    doc_ids = {hit.chunk.doc_id for hit in passages}
    doc_id = passages[0].chunk.doc_id if len(doc_ids) > 1 else doc_ids.pop()
    info = next((d for d in records.documents() if d.doc_id == doc_id), None)
    if info is None:
        return []
    outline = records.headings_of(doc_id)
    # The whole document last: its first sentences of prose, after the title.
    for rows in [*_sections(outline, focus), [row for row, _ in outline]]:
        found = _opening(rows, records, limit, info)
        if found:
            # One section's opening: the next section's would be about something else.
            return found
    return []


def section_kind(heading: str) -> set[Focus | str]:
    """Which kinds of summarising section a heading opens ("2. Executive Summary" one,
    "Conclusions and recommendations" two, "An Overview of Serbia's Doctrine" none)."""
    name = _NUMBERING.sub("", heading.strip().lower()).strip(" .:")
    return {kind for kind, pattern in _KINDS.items() if pattern.fullmatch(name)}


def _sections(outline: list[tuple[int, tuple[str, ...]]], focus: Focus) -> list[list[int]]:
    """The rows of the document's summarising sections, in the order `focus` prefers them
    (a chunk never straddles a heading)."""
    found: dict[Focus | str, list[list[int]]] = {}
    opened: dict[tuple[int, str], list[int]] = {}
    for row, path in outline:
        for depth, heading in enumerate(path):
            if (depth, heading) in opened:
                opened[depth, heading].append(row)
                continue
            for kind in section_kind(heading):
                section = opened.setdefault((depth, heading), [row])
                found.setdefault(kind, []).append(section)
    return [section for kind in _PREFERENCE[focus] for section in found.get(kind, [])]


def _opening(rows: list[int], records: Records, limit: int, info: DocumentInfo) -> list[Opening]:
    """The first sentences of prose in the chunks `rows`, up to `limit`; read a few chunks at
    a time, since the section may be the whole document."""
    chosen: list[Opening] = []
    seen: set[str] = set()
    for at in range(0, len(rows), _BATCH):
        batch = rows[at : at + _BATCH]
        chunks = records.chunks(batch)
        for span in records.sentences_of(batch):
            chunk = chunks[span.chunk_row]
            text = chunk.text[span.start : span.end]
            if text in seen or text in chunk.heading_path or text == info.title:
                continue
            if _prose(text):
                seen.add(text)
                hit = Hit(span.chunk_row, chunk, info.file_name, info.title, 0.0)
                chosen.append(Opening(hit, span.start, span.end))
                if len(chosen) == limit:
                    return chosen
    return chosen


def _prose(text: str) -> bool:
    words = text.split()
    lower = sum(1 for word in words if word[:1].islower())
    ending = text.rstrip().rstrip('"”’)')
    return (
        len(words) >= _MIN_WORDS
        and not text[:1].islower()
        and text.rstrip().endswith(_SENTENCE_END)
        and not ending.endswith("?")
        and lower >= _MIN_LOWER_SHARE * len(words)
    )
