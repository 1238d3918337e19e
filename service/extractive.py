"""Extractive answers: sentences taken verbatim from retrieved passages, each cited to its page.

The answerer scores every sentence of the retrieved passages by its embedding similarity to the
question (sentence vectors are computed at ingest, so this costs one matrix product), by how
many of the question's content words it contains, and by the rank of its passage; it picks a
few with maximal marginal relevance so the answer does not repeat itself. Each quote goes
through `service.citations`, and a sentence whose quote is not on its page is dropped. Cosines
are rounded before they are combined, so that which sentence wins does not depend on whether
the CPU computed them in bf16 or fp32.

A sentence that names other entities than the question does, and none of its own, is no answer
(`service.entities`): asked about Serbia, a sentence about Kosovo alone is not quoted. A question
about the whole document ("What is this report about?") is answered from the document's own
summary (`service.overview`). A question asking for a list is answered with the list that the
best sentence opens or belongs to, item by item, or with the best sentence alone when it
enumerates the answer itself.

It abstains (`service.abstain`) when no sentence is close enough to the question, when no
passage covers enough of its content words, when the question names something no document
mentions, or, since only sentences with a number or a date are candidates for a question that
asks for one, when no close sentence contains one.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from index.embedder import Embedder, Vectors
from index.records import SentenceSpan
from index.retrieve import Hit
from index.store import Index
from service import abstain, entities, overview
from service.answering import Answer, AnswererFactory, AnswerPart, Citation, stream_whole
from service.citations import Numbering, cite_in_chunk
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
_ASKS_LIST = re.compile(
    r"^\s*(?:what are|list|name|enumerate)\b|^\s*which\b.*\b(?:name|names|list|lists|identify"
    r"|identifies|mention|mentions)\??\s*$"
    r"|^\s*(?:which|what)(?: [\w'’-]+){0,3}?s (?:do|does|did|are|were|have|has|can|could|should"
    r"|would|will)\b|^\s*what (?:kinds|types|sorts) of\b",
    re.IGNORECASE,
)
_ENUMERATION = re.compile(
    r"(?:\w[\w '’-]{0,40}, ){2,}(?:(?:and|or) |\w[\w '’-]{0,40} (?:and|or) )\w"
)
"""Three or more short items in a row, the last after "and" or "or"."""
_SHORT = 2
"""Content words in a question short enough for `AnswerConfig.short_question_similarity`."""
_ITEM = re.compile(r"\s*(?:[-•*–▪●◦]|\(?\d{1,2}[.)]|\(?[a-z][.)])\s+")
"""A list item's bullet or number."""


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
    short_question_similarity: float = 0.45
    """The floor for a question of one or two content words, met by a sentence holding them
    all. Probed with 45 such questions over the reference corpus (none is in the gold set),
    every sentence above 0.45 answered (the author, drones, Huawei, Russian gas), and below
    it some did not ("inflation" found "inflated")."""
    max_items: int = 6
    """The most items quoted from a list that answers a question asking for one."""
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


@dataclass(frozen=True)
class _Quote:
    """A sentence to quote: where it starts in its passage's text, and how it scored."""

    hit: Hit
    start: int
    text: str
    score: float
    item: bool = False
    """An item of a list: set on a line of its own."""


def extractive(config: AnswerConfig | None = None) -> AnswererFactory:
    """The factory an engine calls for each index version it loads."""
    return lambda index, embedder: ExtractiveAnswerer(index, embedder, config)


class ExtractiveAnswerer:
    name = "extractive"

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
        focus = overview.asks_overview(question)
        if focus is not None:
            found = self._overview(focus, hits)
            if found is not None:
                return found
        query = query_vector if query_vector is not None else self._embedder.embed([question])
        sources = _ASKS_SOURCE.search(question) is not None
        lists = _ASKS_LIST.search(question) is not None
        candidates = self._candidates(hits, query[0], set(weights), sources, lists)
        if not sources:
            candidates = [c for c in candidates if not _REFERENCE_LIKE.search(c.text)]
            candidates = self._about_the_same(question, hits, candidates)
        typed = _answer_type(question)
        if typed is not None:
            candidates = [c for c in candidates if typed.search(c.text)]
        candidates, floor = self._floor(candidates, len(weights))
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
            min_similarity=floor,
            min_coverage=config.min_coverage,
        ):
            return abstain.abstention(question, hits, signals, config.english_only)
        text, citations = self._cite(self._quotes(self._choose(candidates), lists))
        if not citations:
            return abstain.abstention(question, hits, signals, config.english_only)
        return Answer(text, False, citations, hits, signals)

    def stream(
        self, question: str, passages: Sequence[Hit], *, query_vector: Vectors | None = None
    ) -> Iterator[AnswerPart]:
        """Its sentences are verified as soon as they are chosen: streamed from the whole."""
        return stream_whole(self.answer(question, passages, query_vector=query_vector))

    def _floor(self, candidates: list[_Candidate], terms: int) -> tuple[list[_Candidate], float]:
        """The candidates that may answer and the similarity the best of them must reach. A
        question of a word or two ("Who is the author of the report?", "What are the main
        risks?") is too short for its cosine to any sentence to reach the usual floor, even
        the sentence that answers (0.49, 0.55): one that holds all its words may clear a lower
        one."""
        floor = self._config.min_similarity
        best = max((c.similarity for c in candidates), default=0.0)
        holding = [c for c in candidates if c.overlap == 1.0]
        if best < floor and terms <= _SHORT and holding:
            return holding, self._config.short_question_similarity
        return candidates, floor

    def _quotes(self, chosen: list[_Candidate], lists: bool) -> list[_Quote]:
        """What the answer quotes: the chosen sentences, or for a question asking for a list,
        the list the best of them opens or belongs to, or the best alone when it enumerates
        the answer itself (the sentences after it were about something else)."""
        if lists and chosen:
            listed = self._listed(chosen[0])
            if listed:
                return listed
        # A lead-in ("three risks stand out:") says nothing without its list.
        kept = [c for c in chosen if _reads_as_sentence(c.text) or not _leads_in(c.text)]
        if lists and kept and _ENUMERATION.search(kept[0].text):
            kept = kept[:1]
        return [_Quote(c.hit, c.span.start, c.text, c.score) for c in kept]

    def _candidates(
        self, hits: Sequence[Hit], query: Vectors, terms: set[str], sources: bool, lists: bool
    ) -> list[_Candidate]:
        """Sentences of the passages, scored. For a question about sources, a footnote or a
        bibliography entry is quoted whole: the sentence splitter cuts it at every full stop.
        For a question asking for a list, the line that introduces one is a candidate too: it
        often matches the question best, and its items do not."""
        by_row = {hit.row: (rank, hit) for rank, hit in enumerate(hits)}
        spans = self._index.records.sentences_of(list(by_row))
        if not spans:
            return []
        lead_ins = set()
        if lists:
            for span, after in itertools.pairwise(spans):
                text = by_row[span.chunk_row][1].chunk.text
                if (
                    span.chunk_row == after.chunk_row
                    and _leads_in(text[span.start : span.end])
                    and _item(text[after.start : after.end])
                ):
                    lead_ins.add((span.chunk_row, span.start))
        rows = [s.row for s in spans]
        similarities = np.asarray(self._sentence_vectors[rows], dtype=np.float32) @ query
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
            lead_in = (unit.chunk_row, unit.start) in lead_ins
            if not whole_entry and not lead_in and not _reads_as_sentence(text):
                continue  # fragments make poor answers
            seen.add(text)
            candidates.append(self._scored(unit, hit, text, similarity, rank, len(hits), terms))
        return candidates

    def _about_the_same(
        self, question: str, hits: Sequence[Hit], candidates: list[_Candidate]
    ) -> list[_Candidate]:
        """The candidates that name what the question names, or nothing it could be confused
        with: asked about Serbia's budget, Kosovo's is no answer, however close its words. A
        sentence speaks of what the one before it does ("Such perceptions were ...", "the
        country"), so it is read with that one: on the gold set, two right answers named only
        the date or the regions asked for. Footnotes name an author and an outlet, not their
        subject, and are not held to this."""
        read = "\n".join([question, *(hit.chunk.text for hit in hits)])
        wanted = entities.names(question, read)
        if not wanted:
            return candidates
        starts: dict[int, list[int]] = {}
        for span in self._index.records.sentences_of([hit.row for hit in hits]):
            starts.setdefault(span.chunk_row, []).append(span.start)
        kept = []
        for candidate in candidates:
            named = entities.names(candidate.text, read)
            if entities.agree(wanted, named):
                kept.append(candidate)
                continue
            passage = candidate.hit.chunk.text
            start = candidate.span.start
            before = max(
                (s for s in starts.get(candidate.span.chunk_row, []) if s < start), default=0
            )
            if entities.agree(wanted, named | entities.names(passage[before:start], read)):
                kept.append(candidate)
        return kept

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
            vector = np.asarray(self._sentence_vectors[candidate.span.row], dtype=np.float32)
            if all(
                self._steps(float(vector @ self._sentence_vectors[c.span.row].astype(np.float32)))
                < redundant
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

    def _cite(self, quotes: list[_Quote]) -> tuple[str, list[Citation]]:
        """The answer text, "sentence [n]" joined by spaces (list items each on a line of
        its own, after "- "), and its citations."""
        text = ""
        numbering = Numbering()
        for quote in quotes:
            # Where the sentence will stand if its quote checks out; a dropped one takes no room.
            separator = ("\n- " if quote.item else " ") if text else ""
            start = len(text) + len(separator)
            citation = cite_in_chunk(
                self._index.records,
                quote.hit,
                quote.start,
                quote.text,
                round(quote.score, 4),
                answer_span=(start, start + len(quote.text)),
            )
            if citation is not None:
                text += f"{separator}{quote.text} [{numbering.number(citation)}]"
        return text, numbering.citations

    def _overview(self, focus: overview.Focus, hits: list[Hit]) -> Answer | None:
        """The answer to a question about the whole document, from its own summary; None when
        no sentence of it could be cited."""
        found = overview.openings(focus, hits, self._index.records, self._config.max_sentences)
        text, citations = self._cite([_Quote(o.hit, o.start, o.text, 0.0) for o in found])
        if not citations:
            return None
        cited = {c.chunk_id for c in citations}
        # The passages it was read from, then what retrieval found.
        shown = list(
            {o.hit.chunk.chunk_id: o.hit for o in found if o.hit.chunk.chunk_id in cited}.values()
        )
        shown += [hit for hit in hits if hit.chunk.chunk_id not in cited]
        return Answer(text, False, citations, shown, {"overview": 1.0})

    def _listed(self, best: _Candidate) -> list[_Quote]:
        """The list that the best sentence opens or belongs to, as its lead-in and up to
        `max_items` items, when it stands in the best sentence's passage; else nothing. Items
        are quoted without their bullet or number."""
        passage = best.hit.chunk.text
        spans = self._index.records.sentences_of([best.span.chunk_row])
        texts = [passage[s.start : s.end] for s in spans]
        at = next((i for i, s in enumerate(spans) if s.start == best.span.start), None)
        if at is None:
            return []
        first = at + 1 if at + 1 < len(spans) and _item(texts[at + 1]) else at
        while first > 0 and _item(texts[first - 1]):
            first -= 1
        last = first
        while last < len(spans) and _item(texts[last]):
            last += 1
        if last - first < 2 or not first - 1 <= at < last:
            return []
        quotes = []
        if first > 0 and (at == first - 1 or _leads_in(texts[first - 1])):
            lead = spans[first - 1]
            quotes.append(_Quote(best.hit, lead.start, texts[first - 1], best.score))
        for span, text in list(zip(spans, texts, strict=True))[first:last][
            : self._config.max_items
        ]:
            marker = _ITEM.match(text)
            skip = marker.end() if marker else 0
            quotes.append(_Quote(best.hit, span.start + skip, text[skip:], best.score, True))
        return quotes


def _answer_type(question: str) -> re.Pattern[str] | None:
    """What an answering sentence must contain when the question asks for a number or a date."""
    if _ASKS_NUMBER.search(question):
        return _HAS_NUMBER
    if _ASKS_DATE.search(question):
        return _HAS_DATE
    return None


def _leads_in(text: str) -> bool:
    return len(text.split()) >= 4 and text.rstrip().endswith(":")


def _item(text: str) -> bool:
    """A bulleted or numbered line, not a footnote or a bibliography entry."""
    return _ITEM.match(text) is not None and not _REFERENCE_LIKE.search(text[2:])


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
