"""Dense, lexical and hybrid retrieval over one loaded index version.

Hybrid fuses three rankings by reciprocal rank (Cormack et al. 2009): the chunks' vectors, BM25,
and, for the candidates those two found, each chunk's best sentence against the question (the
sentence vectors the answerers use, so nothing more is embedded). A chunk that holds one sentence
on the question but is mostly about something else ranks higher than its chunk vector says.
The constants were chosen by 5-fold cross-validation on the reference corpus's gold set
(`bench/calibrate_fusion.py`: nine of its ten folds, with and without one passage per
page, chose them). Held out, at one passage per page, they
raised page-hit@1 from 0.63 to 0.69, hit@5 from 0.90 to 0.94 and MRR@10 from 0.75 to 0.79.

A question often names the document it is about: "3M's FY2018 capital expenditure" in a
collection holding 3M's 2018 and 2022 filings. When its names and numbers (capitalised words,
words with digits, years split off "FY2018") match one document's file name better than the
others', dense and BM25 are searched again within that document and both rankings join the
fusion (`named_documents`; `bench/financebench_retrieval.py` measures it).
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath

import numpy as np

from index.embedder import Embedder
from index.modes import Mode
from index.store import Index, UnknownDocumentError
from ingest.models import Chunk

RRF_K = 1
"""The constant of reciprocal-rank fusion. The published default, 60, flattens the top ranks,
which on reports is where the signal is; cross-validation chose 1 over 0, 2, 5, 10 and 60."""
SENTENCE_WEIGHT = 1.0
"""The weight of the best-sentence ranking in the fusion, as the two others'."""
_MIN_CANDIDATES = 50
_TIE_MARGIN = 8
"""Rows fetched past the depth a dense ranking keeps, to see whether a run of equal scores is
cut."""
NAMED_WEIGHT = 1.0
"""The weight of the two rankings searched only within the documents a question names."""
_GLUED_YEAR = re.compile(r"(?<![0-9])((?:19|20)[0-9]{2})(?![0-9])")
_WORD = re.compile(r"(?u)\b\w+\b")


@dataclass(frozen=True)
class Hit:
    row: int
    """Row of the chunk in this index version (vectors, BM25, records, sentences)."""
    chunk: Chunk
    file_name: str
    title: str
    score: float
    dense_rank: int | None = None
    lexical_rank: int | None = None
    page_label: str | None = None
    """The printed label of the page the chunk starts on, when the file has them."""

    @property
    def heading(self) -> str:
        return " > ".join(self.chunk.heading_path)


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    timings_ms: dict[str, float] = field(default_factory=dict)
    query_vector: np.ndarray | None = None


class Retriever:
    def __init__(
        self, index: Index, embedder: Embedder, named_weight: float = NAMED_WEIGHT
    ) -> None:
        self.index = index
        self._embedder = embedder
        self._named_weight = named_weight
        self._documents = {d.doc_id: d for d in index.documents()}
        self._by_file_name = {d.file_name: d.doc_id for d in self._documents.values()}
        self._names = DocumentNames(
            {doc_id: info.file_name for doc_id, info in self._documents.items()},
            index.lexical.analyze,
        )

    def named_documents(self, question: str) -> list[str]:
        """The doc ids whose file names the question names best ("3M's FY2018 capital
        expenditure" names 3M_2018_10K.pdf over 3M_2022_10K.pdf), or none when its words tell
        no document apart."""
        return self._names.named(question)

    def resolve_documents(self, names: Sequence[str]) -> list[str]:
        """Doc ids for ids or file names; an unknown name is an error naming the known ones."""
        return resolve_documents(names, self._by_file_name)

    def search(
        self,
        question: str,
        k: int = 10,
        mode: Mode = Mode.HYBRID,
        documents: Sequence[str] | None = None,
        distinct_pages: bool = False,
    ) -> SearchResult:
        if k < 1:
            # A slice with a negative k would quietly drop hits from the end instead.
            raise ValueError(f"k must be at least 1, not {k}")
        timings: dict[str, float] = {}
        size = self.index.vectors.size
        if size == 0:
            return SearchResult([], timings)
        allowed_rows = None
        if documents:
            selected = self.index.records.rows_of(self.resolve_documents(documents))
            allowed_rows = np.array(sorted(selected), dtype=np.int64)
        depth = candidate_depth(size, k, distinct_pages)
        named_rows = None
        if mode is Mode.HYBRID and not documents and self._named_weight > 0:
            named = self.named_documents(question)
            if named:
                named_rows = np.array(sorted(self.index.records.rows_of(named)), dtype=np.int64)

        dense: list[tuple[int, float]] = []
        lexical: list[tuple[int, float]] = []
        named_dense: list[tuple[int, float]] = []
        named_lexical: list[tuple[int, float]] = []
        query_vector = None
        if mode in (Mode.DENSE, Mode.HYBRID):
            started = time.perf_counter()
            query_vector = self._embedder.embed([question])
            timings["embed_ms"] = _ms(started)
            started = time.perf_counter()
            dense = self._dense(query_vector, depth, allowed_rows)
            if named_rows is not None:
                named_dense = self._dense(query_vector, depth, named_rows)
            timings["dense_ms"] = _ms(started)
        if mode in (Mode.BM25, Mode.HYBRID):
            started = time.perf_counter()
            lexical = self.index.lexical.search(question, depth, _mask(size, allowed_rows))
            if named_rows is not None:
                named_lexical = self.index.lexical.search(question, depth, _mask(size, named_rows))
            timings["lexical_ms"] = _ms(started)

        started = time.perf_counter()
        if mode is Mode.HYBRID:
            assert query_vector is not None
            candidates = fusion_candidates(dense, lexical, named_dense, named_lexical)
            sentences = by_best_sentence(self.index, candidates, query_vector[0])
            timings["sentences_ms"] = _ms(started)
            started = time.perf_counter()
            ranked = fuse_hybrid(
                dense, lexical, sentences, named_dense, named_lexical, self._named_weight
            )
        else:
            ranked = dense or lexical
        hits = self._hits(ranked, dense, lexical, k, distinct_pages)
        timings["fuse_ms"] = _ms(started)
        return SearchResult(hits, timings, query_vector)

    def _dense(
        self, query_vector: np.ndarray, depth: int, rows: np.ndarray | None
    ) -> list[tuple[int, float]]:
        def nearest(count: int) -> list[tuple[int, float]]:
            found_scores, found_rows = self.index.vectors.search(query_vector, count, rows)
            return [
                (int(row), float(score))
                for row, score in zip(found_rows[0], found_scores[0], strict=True)
                if row >= 0
            ]

        return whole_ties(nearest, depth, self.index.vectors.size)

    def _hits(
        self,
        ranked: list[tuple[int, float]],
        dense: list[tuple[int, float]],
        lexical: list[tuple[int, float]],
        k: int,
        distinct_pages: bool,
    ) -> list[Hit]:
        dense_rank = {row: rank for rank, (row, _) in enumerate(dense, start=1)}
        lexical_rank = {row: rank for rank, (row, _) in enumerate(lexical, start=1)}
        if distinct_pages:
            ranked = first_per_page(
                ranked, self.index.records.first_pages([row for row, _ in ranked])
            )
        kept = ranked[:k]
        chunks = self.index.records.chunks([row for row, _ in kept])
        labels = self.index.records.page_labels(
            [(chunks[row].doc_id, chunks[row].page_start) for row, _ in kept]
        )
        hits = []
        for row, score in kept:
            chunk = chunks[row]
            info = self._documents[chunk.doc_id]
            hits.append(
                Hit(
                    row,
                    chunk,
                    info.file_name,
                    info.title,
                    score,
                    dense_rank.get(row),
                    lexical_rank.get(row),
                    labels.get((chunk.doc_id, chunk.page_start)),
                )
            )
        return hits


def resolve_documents(names: Sequence[str], by_file_name: Mapping[str, str]) -> list[str]:
    """Doc ids for `names`, each a doc id or a file name of `by_file_name` (file name -> doc id);
    an unknown name is an error naming the known files."""
    doc_ids = set(by_file_name.values())
    resolved = []
    for name in names:
        doc_id = name if name in doc_ids else by_file_name.get(name)
        if doc_id is None:
            known = ", ".join(sorted(by_file_name)) or "none"
            raise UnknownDocumentError(f"no document '{name}' in the index (documents: {known})")
        resolved.append(doc_id)
    return resolved


class DocumentNames:
    """Which documents a question names, by the words of their file names."""

    def __init__(self, file_names: Mapping[str, str], analyze: Callable[[str], list[str]]) -> None:
        """`file_names` maps doc ids to file names; `analyze` is the BM25 analyser, so that a
        question's words and a name's are stemmed alike."""
        self._analyze = analyze
        # File names, not titles: a PDF's title metadata is often a form name or an accession
        # number ("UNITED STATES SECURITIES AND EXCHANGE COMMISSION", "0000012927-23-000007").
        self._names = {
            doc_id: frozenset(analyze(_name_text(PurePath(file_name).stem)))
            for doc_id, file_name in file_names.items()
        }
        counts: dict[str, int] = {}
        for words in self._names.values():
            for word in words:
                counts[word] = counts.get(word, 0) + 1
        # A word in every document's name ("10k", "report") tells them apart no better than none.
        self._weight = {word: math.log(len(self._names) / count) for word, count in counts.items()}

    def named(self, question: str) -> list[str]:
        """The doc ids the question names best; none when its words tell no document apart."""
        # Only names and numbers name a document: "security" in a question is a topic, while
        # "Serbia", "3M" and "FY2018" name something.
        tokens = [
            token
            for token in _WORD.findall(_name_text(question))
            if token[0].isupper() or any(char.isdigit() for char in token)
        ]
        words = set(self._analyze(" ".join(tokens)))
        # File names run words together ("AMERICANEXPRESS"); so may a question's two neighbours.
        words |= set(self._analyze(" ".join(a + b for a, b in itertools.pairwise(tokens))))
        scores = {
            doc_id: sum(self._weight[word] for word in names & words)
            for doc_id, names in self._names.items()
        }
        best = max(scores.values(), default=0.0)
        named = sorted(doc_id for doc_id, value in scores.items() if value == best)
        # Naming every document (or none) would only count the other rankings twice.
        return named if best > 0.0 and len(named) < len(scores) else []


def candidate_depth(size: int, k: int, distinct_pages: bool) -> int:
    """How many rows each ranking keeps for the fusion, in an index of `size` rows."""
    return min(size, max(_MIN_CANDIDATES, k * (4 if distinct_pages else 2)))


def fusion_candidates(*rankings: Sequence[tuple[int, float]]) -> set[int]:
    """The rows whose best sentence is ranked: every row a dense or BM25 ranking found."""
    return {row for ranking in rankings for row, _ in ranking}


def fuse_hybrid(
    dense: Sequence[tuple[int, float]],
    lexical: Sequence[tuple[int, float]],
    sentences: Sequence[tuple[int, float]],
    named_dense: Sequence[tuple[int, float]] = (),
    named_lexical: Sequence[tuple[int, float]] = (),
    named_weight: float = NAMED_WEIGHT,
) -> list[tuple[int, float]]:
    """The hybrid ranking from its five rankings; a sharded search calls it with rankings
    merged across shards, so that both fuse alike."""
    return fuse(
        [
            (dense, 1.0),
            (lexical, 1.0),
            (sentences, SENTENCE_WEIGHT),
            (named_dense, named_weight),
            (named_lexical, named_weight),
        ]
    )


def first_per_page(
    ranked: Sequence[tuple[int, float]], pages: Mapping[int, tuple[str, int]]
) -> list[tuple[int, float]]:
    """The ranking with only the best row of each (doc id, first page) that `pages` gives."""
    seen: set[tuple[str, int]] = set()
    kept = []
    for row, score in ranked:
        if pages[row] not in seen:
            seen.add(pages[row])
            kept.append((row, score))
    return kept


def by_best_sentence(
    index: Index, candidates: Iterable[int], query_vector: np.ndarray
) -> list[tuple[int, float]]:
    """The candidate chunks ranked by the cosine of their closest sentence to the question."""
    rows = np.array(sorted(candidates), dtype=np.int64)
    ranges = index.sentence_ranges()
    if ranges is None:
        spans = sorted(
            index.records.sentences_of(rows.tolist()), key=lambda span: (span.chunk_row, span.row)
        )
        chunk_of = np.array([span.chunk_row for span in spans], dtype=np.int64)
        sentence_rows = np.array([span.row for span in spans], dtype=np.int64)
        rows, lengths = np.unique(chunk_of, return_counts=True)
    else:
        starts, ends = ranges
        lengths = ends[rows] - starts[rows]
        rows, starts_kept, lengths = (
            rows[lengths > 0],
            starts[rows][lengths > 0],
            lengths[lengths > 0],
        )
        # Each chunk's sentence rows, one chunk after another.
        sentence_rows = np.repeat(starts_kept - _firsts(lengths), lengths) + np.arange(
            lengths.sum()
        )
    if not len(rows):
        return []
    vectors = np.asarray(index.sentence_vectors()[sentence_rows], dtype=np.float32)
    cosines = vectors @ np.asarray(query_vector, dtype=np.float32)
    best = np.maximum.reduceat(cosines, _firsts(lengths))
    return by_score(zip(rows.tolist(), best.tolist(), strict=True))


def _firsts(lengths: np.ndarray) -> np.ndarray:
    """Where each group starts in the concatenation of groups of these lengths."""
    return np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)


def whole_ties(
    search: Callable[[int], Sequence[tuple[int, float]]], depth: int, most: int
) -> list[tuple[int, float]]:
    """The first `depth` of `search`'s ranking by score, then row. FAISS orders equal scores (a
    passage repeated word for word) as it likes and cuts a run of them anywhere, so this fetches
    until the run at the cut is whole: a search then ranks alike on every machine, and a sharded
    search as one index."""
    fetch = min(depth + _TIE_MARGIN, most)
    while True:
        found = search(fetch)
        whole = len(found) < fetch or fetch >= most
        if whole or len(found) <= depth or found[-1][1] < found[depth - 1][1]:
            return by_score(found)[:depth]
        fetch = min(2 * fetch, most)


def by_score(pairs: Iterable[tuple[int, float]]) -> list[tuple[int, float]]:
    """Best score first, equal scores in row order."""
    return sorted(pairs, key=lambda item: (-item[1], item[0]))


def fuse(
    rankings: Sequence[tuple[Sequence[tuple[int, float]], float]], k: float = RRF_K
) -> list[tuple[int, float]]:
    """Weighted reciprocal-rank fusion of (ranking, weight) pairs: each row scores the sum of
    weight / (k + its rank) over the rankings that hold it."""
    scores: dict[int, float] = {}
    for ranking, weight in rankings:
        for rank, (row, _) in enumerate(ranking, start=1):
            scores[row] = scores.get(row, 0.0) + weight / (k + rank)
    # Ties (equal fused score) are broken by row so results never depend on dict order.
    return by_score(scores.items())


def _mask(size: int, rows: np.ndarray | None) -> np.ndarray | None:
    if rows is None:
        return None
    mask = np.zeros(size, dtype=bool)
    mask[rows] = True
    return mask


def _name_text(text: str) -> str:
    """Underscores made spaces and years split from what they are glued to ("FY2018",
    "2021Q1"), so that the analyser sees the year as a word of its own."""
    return _GLUED_YEAR.sub(r" \1 ", text.replace("_", " "))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
