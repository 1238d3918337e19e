"""Extractive answers: sentences taken verbatim from retrieved passages, each cited to its page.

The answerer scores every sentence of the retrieved passages by its embedding similarity to the
question (sentence vectors are computed at ingest, so this costs one matrix product), by how
many of the question's content words it contains, and by the rank of its passage; it picks a
few with maximal marginal relevance so the answer does not repeat itself. Each quote goes
through `service.citations`, and a sentence whose quote is not on its page is dropped. Cosines
are rounded before they are combined, so that which sentence wins does not depend on whether
the CPU computed them in bf16 or fp32.

It abstains (`service.abstain`) when no sentence is close enough to the question, when no
passage covers enough of its content words, when the question names something no document
mentions, or, since only sentences with a number or a date are candidates for a question that
asks for one, when no close sentence contains one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.embedder import Embedder, Vectors
from index.records import SentenceSpan
from index.retrieve import Hit
from index.store import Index
from ingest.models import Chunk
from service import abstain
from service.answering import Answer, AnswererFactory, Citation
from service.citations import Numbering, cite
from service.leading import dangles, standalone_first
from service.terms import content_terms, term_weights

_ASKS_NUMBER = re.compile(
    r"\bhow (?:many|much|large|big|long)\b|\bwhat (?:percentage|share|proportion|number|amount)\b",
    re.IGNORECASE,
)
_ASKS_DATE = re.compile(
    r"\bwhen\b|\b(?:what|which) (?:year|date|month)\b|\bin what year\b", re.IGNORECASE
)
_HAS_NUMBER = re.compile(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|hundred|thousand|million|billion"
    r"|dozen|half|twice|double)\b",
    re.IGNORECASE,
)
_HAS_DATE = re.compile(
    r"\b(?:1[89]|20)\d\d\b|\b(?:January|February|March|April|May|June|July|August|September"
    r"|October|November|December)\b"
)
_REFERENCE_LIKE = re.compile(r"^\d{1,3}\.\s|https?://|www\.|<http|\bpp?\.\s?\d")
"""Footnotes and bibliography entries: right to quote for a question about sources only."""
_MAX_ENTRY_WORDS = 80
_ASKS_SOURCE = re.compile(
    r"\b(?:source|sources|cite|cites|cited|reference|references|footnote|article|published"
    r"|publisher|wrote|written|author|authors|isbn|bibliograph\w*|link|url)\b",
    re.IGNORECASE,
)
_SENTENCE_END = (".", "!", "?", '"', "”", "’", ")")


@dataclass(frozen=True)
class AnswerConfig:
    max_sentences: int = 3
    min_similarity: float = 0.6
    """Abstain when the best sentence is less similar to the question than this."""
    min_coverage: float = 0.1
    """Abstain when no top passage holds this share of the question's content words, each
    weighted by its inverse document frequency."""
    coverage_passages: int = 5
    similarity_weight: float = 0.6
    overlap_weight: float = 0.25
    rank_weight: float = 0.15
    redundancy: float = 0.85
    """Skip a sentence this similar (cosine) to one already chosen."""
    relative_floor: float = 0.9
    """Keep further sentences only if they score at least this share of the best one: on the
    gold set 0.9 beat 0.8 on citation precision (+0.07) at equal recall; 0.95 lost recall."""
    english_only: bool = True
    """The embedding model reads English only (the bundled one does): an abstention on a
    question in another language or script says so."""
    similarity_step: float = 0.01
    """Cosines are rounded to this step before sentences are ranked or compared. bf16 and fp32
    arithmetic move them by up to ~1e-3 (6e-4 measured on the samples), enough to swap two
    sentences whose scores differ by 6e-5 (a footnote and a title line did); a finer difference
    says nothing about which sentence answers better, and rounded inputs give every CPU the
    same scores to the last bit."""


@dataclass(frozen=True)
class _Candidate:
    span: SentenceSpan
    hit: Hit
    text: str
    similarity: float
    """As measured: the abstention thresholds were calibrated on it."""
    overlap: float
    score: float
    """From the rounded similarity, so that it does not depend on the CPU's arithmetic."""


def extractive(config: AnswerConfig | None = None) -> AnswererFactory:
    """The factory an engine calls for each index version it loads."""
    return lambda index, embedder: ExtractiveAnswerer(index, embedder, config)


class ExtractiveAnswerer:
    def __init__(self, index: Index, embedder: Embedder, config: AnswerConfig | None = None):
        self._index = index
        self._embedder = embedder
        self._config = config or AnswerConfig()
        self._sentence_vectors = index.sentence_vectors()

    def answer(
        self, question: str, passages: Sequence[Hit], *, query_vector: Vectors | None = None
    ) -> Answer:
        hits = list(passages)
        config = self._config
        lexical = self._index.lexical
        weights = term_weights(question, lexical)
        if not hits:
            signals = {"similarity": 0.0, "coverage": 0.0}
            return abstain.abstention(question, [], signals, config.english_only)
        query = query_vector if query_vector is not None else self._embedder.embed([question])
        sources = _ASKS_SOURCE.search(question) is not None
        candidates = self._candidates(hits, query[0], set(weights), sources)
        if not sources:
            candidates = [c for c in candidates if not _REFERENCE_LIKE.search(c.text)]
        typed = _answer_type(question)
        if typed is not None:
            candidates = [c for c in candidates if typed.search(c.text)]
        best = max((c.similarity for c in candidates), default=0.0)
        top = max((c.score for c in candidates), default=0.0)
        coverage = abstain.coverage(weights, hits[: config.coverage_passages], lexical)
        unknown = abstain.unknown_names(question, lexical)
        signals = {
            "similarity": round(best, 4),
            "score": round(top, 4),
            "coverage": round(coverage, 4),
            "typed": float(typed is not None),
            "unknown_names": float(len(unknown)),
        }
        if abstain.should_abstain(
            similarity=best,
            coverage=coverage,
            unknown_names=len(unknown),
            min_similarity=config.min_similarity,
            min_coverage=config.min_coverage,
        ):
            return abstain.abstention(question, hits, signals, config.english_only)
        text, citations = self._cite(self._choose(candidates))
        if not citations:
            return abstain.abstention(question, hits, signals, config.english_only)
        return Answer(text, False, citations, hits, signals)

    def _candidates(
        self, hits: Sequence[Hit], query: Vectors, terms: set[str], sources: bool
    ) -> list[_Candidate]:
        """Sentences of the passages, scored. For a question about sources, a footnote or a
        bibliography entry is quoted whole: the sentence splitter cuts it at every full stop."""
        by_row = {hit.row: (rank, hit) for rank, hit in enumerate(hits)}
        spans = self._index.records.sentences_of(list(by_row))
        if not spans:
            return []
        similarities = np.asarray(self._sentence_vectors[[s.row for s in spans]]) @ query
        units: dict[tuple[int, int, int], tuple[SentenceSpan, float]] = {}
        for span, similarity in zip(spans, similarities.tolist(), strict=True):
            start, end = span.start, span.end
            if sources:
                start, end = _entry_around(by_row[span.chunk_row][1].chunk.text, start, end)
            key = (span.chunk_row, start, end)
            # Which sentence stands for an entry must not hinge on the last digits either.
            if key not in units or self._steps(similarity) > self._steps(units[key][1]):
                units[key] = (SentenceSpan(span.row, span.chunk_row, start, end), similarity)
        candidates = []
        seen: set[str] = set()
        for unit, similarity in units.values():
            rank, hit = by_row[unit.chunk_row]
            text = hit.chunk.text[unit.start : unit.end]
            whole_entry = sources and _REFERENCE_LIKE.search(text) is not None
            if text in seen or text in hit.chunk.heading_path:
                continue  # overlap repeats sentences; headings make poor answers
            if not whole_entry and not _reads_as_sentence(text):
                continue  # fragments make poor answers
            seen.add(text)
            candidates.append(self._scored(unit, hit, text, similarity, rank, len(hits), terms))
        return candidates

    def _scored(
        self,
        unit: SentenceSpan,
        hit: Hit,
        text: str,
        similarity: float,
        rank: int,
        passages: int,
        terms: set[str],
    ) -> _Candidate:
        config = self._config
        present = content_terms(text, self._index.lexical)
        overlap = len(terms & present) / len(terms) if terms else 0.0
        prior = 1.0 - rank / passages
        score = (
            config.similarity_weight * self._steps(similarity) * config.similarity_step
            + config.overlap_weight * overlap
            + config.rank_weight * prior
        )
        return _Candidate(unit, hit, text, similarity, overlap, score)

    def _steps(self, cosine: float) -> int:
        return round(cosine / self._config.similarity_step)

    def _choose(self, candidates: list[_Candidate]) -> list[_Candidate]:
        # Equal scores are common once cosines are rounded; the earlier sentence row goes first.
        ranked = sorted(candidates, key=lambda c: (-c.score, c.span.row))
        if not ranked:
            return []
        chosen = [ranked[0]]
        floor = ranked[0].score * self._config.relative_floor
        redundant = self._steps(self._config.redundancy)
        for candidate in ranked[1:]:
            if len(chosen) == self._config.max_sentences or candidate.score < floor:
                break
            vector = self._sentence_vectors[candidate.span.row]
            if all(
                self._steps(float(vector @ self._sentence_vectors[c.span.row])) < redundant
                for c in chosen
            ):
                chosen.append(candidate)
        if all(dangles(c.text) for c in chosen):
            # Only illustrations made the cut: lead with the best standalone sentence that
            # clears the floor, if one does, in place of the weakest.
            standalone = next(
                (c for c in ranked if c.score >= floor and not dangles(c.text)),
                None,
            )
            if standalone is not None:
                chosen = [standalone, *chosen[: self._config.max_sentences - 1]]
        return standalone_first(chosen, lambda c: c.text)

    def _cite(self, chosen: list[_Candidate]) -> tuple[str, list[Citation]]:
        """The answer text, "sentence [n]" joined by spaces, and its citations."""
        text = ""
        numbering = Numbering()
        for candidate in chosen:
            chunk = candidate.hit.chunk
            page = chunk.page_at(candidate.span.start)
            # Where the sentence will stand if its quote checks out; a dropped one takes no room.
            separator = " " if text else ""
            start = len(text) + len(separator)
            citation = cite(
                self._index.records,
                candidate.hit,
                page,
                candidate.text,
                round(candidate.score, 4),
                answer_span=(start, start + len(candidate.text)),
                near=_offset_on_page(candidate.span.start, page - chunk.page_start, chunk),
            )
            if citation is not None:
                text += f"{separator}{candidate.text} [{numbering.number(citation)}]"
        return text, numbering.citations


def _offset_on_page(start: int, pages_in: int, chunk: Chunk) -> int | None:
    """Where a sentence starting at `start` in the chunk stands on its page, when the chunk
    says: it records where later pages begin, not where on its first page it starts."""
    return start - chunk.page_breaks[pages_in - 1] if pages_in > 0 else None


def _answer_type(question: str) -> re.Pattern[str] | None:
    """What an answering sentence must contain when the question asks for a number or a date."""
    if _ASKS_NUMBER.search(question):
        return _HAS_NUMBER
    if _ASKS_DATE.search(question):
        return _HAS_DATE
    return None


def _reads_as_sentence(text: str) -> bool:
    """Not a heading, not a question (reports ask rhetorical ones), not the tail of a sentence
    that began on the previous page."""
    words = len(text.split())
    stripped = text.rstrip().rstrip('"”’)')
    return (
        words >= 4
        and not text[:1].islower()
        and not stripped.endswith("?")
        and (text.rstrip().endswith(_SENTENCE_END) or words >= 12)
    )


def _entry_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The footnote or bibliography entry (one line of `text`) that holds text[start:end], or
    the span itself when its line is ordinary prose. Lines never cross a page."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    line = text[line_start:line_end]
    if _REFERENCE_LIKE.search(line) and len(line.split()) <= _MAX_ENTRY_WORDS:
        return line_start, line_end
    return start, end
