"""Dense, lexical and hybrid (reciprocal-rank fusion) retrieval over one loaded index version."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from index.embedder import Embedder
from index.modes import Mode
from index.store import Index, UnknownDocumentError
from ingest.models import Chunk

RRF_K = 60
"""The constant of reciprocal-rank fusion (Cormack et al. 2009); 60 is the published default."""
_MIN_CANDIDATES = 50


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

    @property
    def heading(self) -> str:
        return " > ".join(self.chunk.heading_path)


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    timings_ms: dict[str, float] = field(default_factory=dict)
    query_vector: np.ndarray | None = None


class Retriever:
    def __init__(self, index: Index, embedder: Embedder) -> None:
        self.index = index
        self._embedder = embedder
        self._documents = {d.doc_id: d for d in index.documents()}
        self._by_file_name = {d.file_name: d.doc_id for d in self._documents.values()}

    def resolve_documents(self, names: Sequence[str]) -> list[str]:
        """Doc ids for ids or file names; an unknown name is an error naming the known ones."""
        resolved = []
        for name in names:
            doc_id = name if name in self._documents else self._by_file_name.get(name)
            if doc_id is None:
                known = ", ".join(sorted(self._by_file_name)) or "none"
                raise UnknownDocumentError(
                    f"no document '{name}' in the index (documents: {known})"
                )
            resolved.append(doc_id)
        return resolved

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
        depth = min(size, max(_MIN_CANDIDATES, k * (4 if distinct_pages else 2)))

        dense: list[tuple[int, float]] = []
        lexical: list[tuple[int, float]] = []
        query_vector = None
        if mode in (Mode.DENSE, Mode.HYBRID):
            started = time.perf_counter()
            query_vector = self._embedder.embed([question])
            timings["embed_ms"] = _ms(started)
            started = time.perf_counter()
            found_scores, found_rows = self.index.vectors.search(query_vector, depth, allowed_rows)
            dense = [
                (int(row), float(score))
                for row, score in zip(found_rows[0], found_scores[0], strict=True)
                if row >= 0
            ]
            timings["dense_ms"] = _ms(started)
        if mode in (Mode.BM25, Mode.HYBRID):
            started = time.perf_counter()
            mask = None
            if allowed_rows is not None:
                mask = np.zeros(size, dtype=bool)
                mask[allowed_rows] = True
            lexical = self.index.lexical.search(question, depth, mask)
            timings["lexical_ms"] = _ms(started)

        started = time.perf_counter()
        ranked = _fuse(dense, lexical) if mode is Mode.HYBRID else (dense or lexical)
        hits = self._hits(ranked, dense, lexical, k, distinct_pages)
        timings["fuse_ms"] = _ms(started)
        return SearchResult(hits, timings, query_vector)

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
            chunks = self.index.records.chunks([row for row, _ in ranked])
            seen: set[tuple[str, int]] = set()
            kept = []
            for row, score in ranked:
                key = (chunks[row].doc_id, chunks[row].page_start)
                if key not in seen:
                    seen.add(key)
                    kept.append((row, score))
            ranked = kept
        else:
            chunks = self.index.records.chunks([row for row, _ in ranked[:k]])
        hits = []
        for row, score in ranked[:k]:
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
                )
            )
        return hits


def _fuse(
    dense: list[tuple[int, float]], lexical: list[tuple[int, float]]
) -> list[tuple[int, float]]:
    scores: dict[int, float] = {}
    for ranking in (dense, lexical):
        for rank, (row, _) in enumerate(ranking, start=1):
            scores[row] = scores.get(row, 0.0) + 1.0 / (RRF_K + rank)
    # Ties (equal fused score) are broken by row so results never depend on dict order.
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
