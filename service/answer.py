"""Extractive answers: sentences taken verbatim from retrieved passages, each cited to its page.

The answerer scores every sentence of the retrieved passages by its embedding similarity to the
question (sentence vectors are computed at ingest, so this costs one matrix product), by how
many of the question's content words it contains, and by the rank of its passage; it picks a
few with maximal marginal relevance so the answer does not repeat itself. Before an answer
leaves, each quote is checked against the stored text of the page it cites, and a sentence
whose quote does not match is dropped. Cosines are rounded before they are combined, so that
which sentence wins does not depend on whether the CPU computed them in bf16 or fp32.

A single similarity threshold cannot tell unanswerable questions apart (FINDINGS.md), so the
answerer abstains on any of three independent signals: no sentence is close enough to the
question; no single passage holds enough of the question's content words, weighted by how rare
they are (a name the corpus never mentions weighs most); or the question asks for a number or a
date and no close sentence contains one. The thresholds are calibrated on the gold set
(`bench/calibrate_abstention.py`). When the question is not in English, which the bundled model
does not read, the abstention says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from index.embedder import Embedder, Vectors
from index.records import SentenceSpan
from index.retrieve import Hit, SearchResult
from index.store import Index
from service.language import english_only_note, foreign_language

_NO_ANSWER = "The documents do not answer this question."
_PASSAGES_BELOW = "The closest passages are listed below."
ABSTAIN_MESSAGE = f"{_NO_ANSWER} {_PASSAGES_BELOW}"
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
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
# Words that carry no topic: they appear in questions about anything.
_QUESTION_WORDS = frozenset(
    """a an the and or but of to in on at by for from
    with about as into over under between is are was were be been being
    do does did doing has have had having will would shall should can could
    may might must what which who whom whose when where why how whether if
    than then this that these those there here it its they them their he
    she his her we our you your i me my not no nor so
    such any all some each every more most other own same very just also
    report reports paper document documents strategy say says said according
    mention mentions describe describes tell tells explain explains give list name""".split()  # noqa: SIM905
)


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
class Citation:
    doc: str
    doc_id: str
    title: str
    page: int
    page_label: str | None
    quote: str
    chunk_id: str
    score: float


@dataclass(frozen=True)
class Answer:
    text: str
    abstained: bool
    citations: list[Citation]
    passages: list[Hit]
    signals: dict[str, float] = field(default_factory=dict)
    """What the abstention decision rested on: best similarity, content-word coverage, and
    whether a close sentence has the number or date the question asks for (1 or 0)."""


class Answerer(Protocol):
    def answer(self, question: str, result: SearchResult) -> Answer: ...


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


class ExtractiveAnswerer:
    def __init__(self, index: Index, embedder: Embedder, config: AnswerConfig | None = None):
        self._index = index
        self._embedder = embedder
        self._config = config or AnswerConfig()
        self._sentence_vectors = index.sentence_vectors()

    def answer(self, question: str, result: SearchResult) -> Answer:
        hits = result.hits
        weights = self._term_weights(question)
        if not hits:
            signals = {"similarity": 0.0, "coverage": 0.0}
            return Answer(self._abstention(question), True, [], [], signals)
        query = result.query_vector
        if query is None:
            query = self._embedder.embed([question])
        sources = _ASKS_SOURCE.search(question) is not None
        candidates = self._candidates(hits, query[0], set(weights), sources)
        if not sources:
            candidates = [c for c in candidates if not _REFERENCE_LIKE.search(c.text)]
        typed = _answer_type(question)
        if typed is not None:
            candidates = [c for c in candidates if typed.search(c.text)]
        best = max((c.similarity for c in candidates), default=0.0)
        top = max((c.score for c in candidates), default=0.0)
        coverage = self._coverage(weights, hits[: self._config.coverage_passages])
        unknown = self._unknown_names(question)
        signals = {
            "similarity": round(best, 4),
            "score": round(top, 4),
            "coverage": round(coverage, 4),
            "typed": float(typed is not None),
            "unknown_names": float(len(unknown)),
        }
        if unknown or best < self._config.min_similarity or coverage < self._config.min_coverage:
            return Answer(self._abstention(question), True, [], hits, signals)
        sentences, citations = self._cite(self._choose(candidates))
        if not citations:
            return Answer(self._abstention(question), True, [], hits, signals)
        return Answer(" ".join(sentences), False, citations, hits, signals)

    def _abstention(self, question: str) -> str:
        """Only an abstention looks at the question's language: an answer found in another
        language is still an answer."""
        language = foreign_language(question) if self._config.english_only else None
        if language is None:
            return ABSTAIN_MESSAGE
        return f"{_NO_ANSWER} {english_only_note(language)} {_PASSAGES_BELOW}"

    def _terms(self, text: str) -> set[str]:
        kept = [w for w in _WORD.findall(text) if w.lower() not in _QUESTION_WORDS]
        return set(self._index.lexical.analyze(" ".join(kept)))

    def _unknown_names(self, question: str) -> list[str]:
        """Names in the question (capitalised words past its first) that no document uses:
        documents that never mention Hungary cannot say what Hungary does."""
        words = _WORD.findall(question)[1:]
        names = [w for w in words if w[:1].isupper() and w.lower() not in _QUESTION_WORDS]
        lexical = self._index.lexical
        return [
            name
            for name in names
            if all(lexical.document_frequency(stem) == 0 for stem in lexical.analyze(name))
            and lexical.analyze(name)
        ]

    def _term_weights(self, question: str) -> dict[str, float]:
        return {term: self._index.lexical.idf(term) for term in self._terms(question)}

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
        overlap = len(terms & self._terms(text)) / len(terms) if terms else 0.0
        prior = 1.0 - rank / passages
        score = (
            config.similarity_weight * self._steps(similarity) * config.similarity_step
            + config.overlap_weight * overlap
            + config.rank_weight * prior
        )
        return _Candidate(unit, hit, text, similarity, overlap, score)

    def _steps(self, cosine: float) -> int:
        return round(cosine / self._config.similarity_step)

    def _coverage(self, weights: dict[str, float], hits: Sequence[Hit]) -> float:
        """The largest IDF-weighted share of the question's terms that one passage holds."""
        total = sum(weights.values())
        if total <= 0:
            return 0.0
        shares = []
        for hit in hits:
            present = self._terms(f"{hit.heading}\n{hit.chunk.text}")
            shares.append(sum(w for term, w in weights.items() if term in present) / total)
        return max(shares)

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
        return chosen

    def _cite(self, chosen: list[_Candidate]) -> tuple[list[str], list[Citation]]:
        sentences: list[str] = []
        citations: list[Citation] = []
        for candidate in chosen:
            citation = self._verified_citation(candidate)
            if citation is None:
                continue
            position = next(
                (
                    n
                    for n, c in enumerate(citations, 1)
                    if (c.doc_id, c.page, c.quote)
                    == (citation.doc_id, citation.page, citation.quote)
                ),
                None,
            )
            if position is None:
                citations.append(citation)
                position = len(citations)
            sentences.append(f"{candidate.text} [{position}]")
        return sentences, citations

    def _verified_citation(self, candidate: _Candidate) -> Citation | None:
        chunk = candidate.hit.chunk
        page_number = chunk.page_at(candidate.span.start)
        page = self._index.records.page(chunk.doc_id, page_number)
        if page is None or candidate.text not in page.text:
            return None  # never cite a page that does not hold the quote
        return Citation(
            doc=candidate.hit.file_name,
            doc_id=chunk.doc_id,
            title=candidate.hit.title,
            page=page_number,
            page_label=page.label,
            quote=candidate.text,
            chunk_id=chunk.chunk_id,
            score=round(candidate.score, 4),
        )


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
