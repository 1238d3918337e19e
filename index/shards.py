"""One collection split by document into shards, searched by scatter-gather (a simulation).

Each shard is an ordinary index root (`index/store.py`), written from the documents' stored
entries, so nothing is embedded again. `ShardSearcher` keeps one long-lived process per shard,
embeds the question once, sends the vector to every shard, merges each ranking across shards and
fuses the merged rankings with `index.retrieve.fuse_hybrid`, as one index does. The merged
result equals the unsharded one because every ranking is global:

- dense scores are inner products, comparable across shards as they are;
- BM25 scores depend on the collection (IDF from document frequencies and the row count, and
  the average row length), so each shard rebuilds its BM25 matrix at load from its own texts but
  with the collection's statistics, which the gatherer sums from every shard's and sends back;
- the best-sentence ranking scores each candidate by its own sentences, so each shard scores
  the candidates it found and the gatherer keeps those the merged rankings hold;
- rows are numbered as one index would number them. An index orders its documents by id and a
  document's chunks by reading order, so (doc id, place in its document) orders rows as one
  index does, and ties break by row in both.

Dense search is exact only with flat indexes: an IVF index per shard trains its own lists, and
probes differ from one IVF over everything. docs/scale-out.md says what a deployment changes.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import bm25s
import numpy as np
import numpy.typing as npt
from bm25s.scoring import (
    _build_idf_array,
    _build_scores_and_indices_for_matrix,
    _calculate_doc_freqs,
    _select_idf_scorer,
)
from bm25s.tokenization import Tokenizer

from index.embedder import Embedder, EmbedderIdentity, Vectors
from index.lexical import LexicalIndex
from index.lexical import _tokenizer as bm25_tokenizer  # the one LexicalIndex.build uses
from index.modes import Mode
from index.records import DocumentInfo
from index.retrieve import (
    NAMED_WEIGHT,
    DocumentNames,
    Hit,
    SearchResult,
    by_best_sentence,
    by_score,
    candidate_depth,
    first_per_page,
    fuse_hybrid,
    fusion_candidates,
    resolve_documents,
    whole_ties,
)
from index.store import (
    DocumentEntry,
    Index,
    _lexical_text,  # the text BM25 indexes; a copy here could drift from the one index's
    read_manifest,
    require_index,
    write_version,
    writer_lock,
)
from ingest.models import Chunk

Ranking = list[tuple[int, float]]
T = TypeVar("T")


def shard_of(doc_id: str, shards: int) -> int:
    """The shard a document lives in: a hash of its id, so placement needs no directory and a
    document stays put while the shard count does."""
    digest = hashlib.blake2b(doc_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % shards


def split_index(index: Index, roots: Sequence[Path]) -> list[Path]:
    """Write `index`'s documents into one index version per root (by `shard_of`), from their
    stored vectors; returns the versions written."""
    buckets: list[list[DocumentEntry]] = [[] for _ in roots]
    for entry in index.entries():
        buckets[shard_of(entry.document.doc_id, len(roots))].append(entry)
    manifest = index.manifest
    # A flat index searches exactly; per-shard IVF would train its own lists instead.
    spec = manifest.vector_index if manifest.vector_index.kind == "flat" else None
    versions = []
    for root, entries in zip(roots, buckets, strict=True):
        with writer_lock(root):
            versions.append(
                write_version(root, entries, manifest.embedder, manifest.chunking, spec)
            )
    return versions


@dataclass(frozen=True)
class LexicalStats:
    """What BM25 needs to know about a collection: sums, so shards' stats add up to its."""

    rows: int
    tokens: int
    frequencies: Mapping[str, int]
    """Stem -> rows that hold it."""

    @classmethod
    def total(cls, parts: Iterable[LexicalStats]) -> LexicalStats:
        rows = tokens = 0
        frequencies: dict[str, int] = {}
        for part in parts:
            rows += part.rows
            tokens += part.tokens
            for stem, count in part.frequencies.items():
                frequencies[stem] = frequencies.get(stem, 0) + count
        return cls(rows, tokens, frequencies)


@dataclass(frozen=True)
class _Tokenized:
    tokenizer: Tokenizer
    ids: list[list[int]]
    vocabulary: dict[str, int]

    @classmethod
    def of(cls, texts: Sequence[str]) -> _Tokenized:
        # As LexicalIndex.build tokenizes, so that rows hold the same stems in both.
        tokenizer = bm25_tokenizer()
        tokens = tokenizer.tokenize(
            list(texts), update_vocab=True, return_as="tuple", show_progress=False
        )
        # The tokenizer's own vocabulary, not a copy: bm25s adds its empty token to it in place,
        # and queries are tokenized against it.
        return cls(tokenizer, list(tokens.ids), tokens.vocab)

    def stats(self) -> LexicalStats:
        frequencies = _calculate_doc_freqs(
            self.ids, list(self.vocabulary.values()), show_progress=False
        )
        stems = {token_id: stem for stem, token_id in self.vocabulary.items()}
        return LexicalStats(
            len(self.ids),
            sum(len(ids) for ids in self.ids),
            {stems[token_id]: int(count) for token_id, count in frequencies.items() if count},
        )


def collection_lexical(tokenized: _Tokenized, collection: LexicalStats) -> LexicalIndex:
    """A shard's BM25 index whose scores are the ones one index over the whole collection
    gives its rows: bm25s's own scoring, fed the collection's IDF and average length.

    Each score is idf(stem) x a function of (term frequency, row length, average length), all
    computed the way `bm25s.BM25.build_index_from_ids` computes them, so they are the same
    float32 numbers, not merely close."""
    retriever = bm25s.BM25()
    if retriever.method in retriever.methods_requiring_nonoccurrence:
        raise ValueError(f"BM25 variant {retriever.method} scores absent stems; not supported")
    vocabulary = tokenized.vocabulary
    unique_ids = list(vocabulary.values())
    local = _calculate_doc_freqs(tokenized.ids, unique_ids, show_progress=False)
    global_frequencies = {
        token_id: collection.frequencies.get(stem, 0) for stem, token_id in vocabulary.items()
    }
    idf = _build_idf_array(
        global_frequencies,
        n_docs=collection.rows,
        compute_idf_fn=_select_idf_scorer(retriever.idf_method),
        dtype=retriever.dtype,
    )
    # bm25s takes the mean of the row lengths (float64); a sum of integers divided once is the
    # same number.
    average = np.float64(collection.tokens) / collection.rows
    data, rows, stems = _build_scores_and_indices_for_matrix(
        corpus_token_ids=tokenized.ids,
        idf_array=idf,
        avg_doc_len=average,
        doc_frequencies=local,
        k1=retriever.k1,
        b=retriever.b,
        delta=retriever.delta,
        nonoccurrence_array=None,
        method=retriever.method,
        dtype=retriever.dtype,
        int_dtype=retriever.int_dtype,
        show_progress=False,
    )
    values, indices, indptr = retriever._np_csc(
        data=data, rows=rows, cols=stems, shape=(len(tokenized.ids), len(unique_ids))
    )
    retriever.nonoccurrence_array = None  # set by indexing, which this replaces
    retriever.scores = {
        "data": values.astype(retriever.dtype),
        "indices": indices,
        "indptr": indptr,
        "num_docs": len(tokenized.ids),
    }
    # What `bm25s.BM25.index` adds after scoring: the empty token, past the matrix's columns.
    vocabulary.setdefault("", max(unique_ids, default=-1) + 1)
    retriever.vocab_dict = vocabulary
    return LexicalIndex(retriever, tokenized.tokenizer, len(tokenized.ids))


@dataclass(frozen=True)
class ShardFacts:
    """What a shard tells the gatherer once, when it opens."""

    version: str
    embedder: EmbedderIdentity
    documents: list[DocumentInfo]
    chunk_counts: list[int]
    """Chunks of each of `documents`, in the shard's row order."""
    stats: LexicalStats


@dataclass(frozen=True)
class ShardQuery:
    question: str
    query_vector: Vectors | None
    depth: int
    mode: Mode
    documents: tuple[str, ...] | None
    """Doc ids the search is restricted to; None searches every document."""
    named: tuple[str, ...] = ()
    """Doc ids the question names (searched again, for the named rankings)."""
    pages: bool = False


@dataclass(frozen=True)
class ShardAnswer:
    """One shard's rankings, in its own row numbers, each at most `depth` long."""

    dense: Ranking = field(default_factory=list)
    lexical: Ranking = field(default_factory=list)
    named_dense: Ranking = field(default_factory=list)
    named_lexical: Ranking = field(default_factory=list)
    sentences: dict[int, float] = field(default_factory=dict)
    """Best-sentence cosine of every row the rankings above hold."""
    pages: dict[int, tuple[str, int]] = field(default_factory=dict)


class Shard:
    """One shard's index, searched as the gatherer asks; lives in a worker process."""

    def __init__(self, root: Path) -> None:
        version = require_index(root)
        self.index = Index(version, read_manifest(version))
        size = self.index.vectors.size
        chunks = self.index.records.chunks(list(range(size)))
        # Tokenized once, for the stats and then for the collection-wide BM25 matrix.
        self._tokenized = _Tokenized.of([_lexical_text(chunks[row]) for row in range(size)])
        self._lexical = self.index.lexical

    def facts(self) -> ShardFacts:
        documents = self.index.documents()
        by_id = {d.doc_id: d.chunks for d in self.index.manifest.documents}
        return ShardFacts(
            self.index.version,
            self.index.manifest.embedder,
            documents,
            [by_id[d.doc_id] for d in documents],
            self._tokenized.stats(),
        )

    def use_statistics(self, collection: LexicalStats | None) -> None:
        """Score BM25 with the collection's statistics; None keeps the shard's own (wrong
        when sharded: there to show that it is)."""
        if collection is None:
            self._lexical = self.index.lexical
        elif self.index.vectors.size:
            self._lexical = collection_lexical(self._tokenized, collection)

    def search(self, query: ShardQuery) -> ShardAnswer:
        size = self.index.vectors.size
        if size == 0:
            return ShardAnswer()
        allowed = None
        if query.documents is not None:
            allowed = self._rows(query.documents)
            if not len(allowed):
                return ShardAnswer()
        named = self._rows(query.named) if query.named else None
        depth = min(query.depth, size)
        answer = ShardAnswer()
        if query.mode in (Mode.DENSE, Mode.HYBRID):
            vector = query.query_vector
            assert vector is not None
            answer.dense.extend(whole_ties(lambda n: self._dense(vector, n, allowed), depth, size))
            if named is not None and len(named):
                answer.named_dense.extend(
                    whole_ties(lambda n: self._dense(vector, n, named), depth, size)
                )
        if query.mode in (Mode.BM25, Mode.HYBRID):
            mask = _mask(size, allowed)
            # BM25's top k is already whole, equal scores by row (`index.lexical.best_rows`).
            answer.lexical.extend(self._lexical.search(query.question, depth, mask))
            if named is not None and len(named):
                named_mask = _mask(size, named)
                answer.named_lexical.extend(self._lexical.search(query.question, depth, named_mask))
        rankings = (answer.dense, answer.lexical, answer.named_dense, answer.named_lexical)
        candidates = fusion_candidates(*rankings)
        if query.mode is Mode.HYBRID:
            assert query.query_vector is not None
            answer.sentences.update(by_best_sentence(self.index, candidates, query.query_vector[0]))
        if query.pages:
            answer.pages.update(self.index.records.first_pages(sorted(candidates)))
        return answer

    def chunks(self, rows: Sequence[int]) -> dict[int, Chunk]:
        return self.index.records.chunks(list(rows))

    def close(self) -> None:
        self.index.close()

    def _rows(self, doc_ids: Sequence[str]) -> npt.NDArray[np.int64]:
        return np.array(sorted(self.index.records.rows_of(list(doc_ids))), dtype=np.int64)

    def _dense(
        self, query_vector: Vectors, depth: int, rows: npt.NDArray[np.int64] | None
    ) -> Ranking:
        scores, found = self.index.vectors.search(query_vector, depth, rows)
        return [
            (int(row), float(score))
            for row, score in zip(found[0], scores[0], strict=True)
            if row >= 0
        ]


def _mask(size: int, rows: npt.NDArray[np.int64] | None) -> npt.NDArray[np.bool_] | None:
    if rows is None:
        return None
    mask = np.zeros(size, dtype=bool)
    mask[rows] = True
    return mask


# A worker process holds exactly one shard for its whole life; the functions below run in it.
_WORKER_SHARD: Shard | None = None


def _worker_open(root: str) -> ShardFacts:
    global _WORKER_SHARD
    _WORKER_SHARD = Shard(Path(root))
    return _WORKER_SHARD.facts()


def _worker_shard() -> Shard:
    if _WORKER_SHARD is None:
        raise RuntimeError("this worker has not opened its shard")
    return _WORKER_SHARD


def _worker_use_statistics(collection: LexicalStats | None) -> None:
    _worker_shard().use_statistics(collection)


def _worker_search(query: ShardQuery) -> ShardAnswer:
    return _worker_shard().search(query)


def _worker_chunks(rows: list[int]) -> dict[int, Chunk]:
    return _worker_shard().chunks(rows)


class _Remote:
    """A shard in a process of its own: a one-worker pool, so every call reaches the process
    that loaded it."""

    def __init__(self, root: Path) -> None:
        # Spawned, not forked: a fork of a process running OpenMP (FAISS, torch) can hang.
        self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        self._opened = self._pool.submit(_worker_open, str(root))

    def facts(self) -> Future[ShardFacts]:
        return self._opened

    def use_statistics(self, collection: LexicalStats | None) -> Future[None]:
        return self._pool.submit(_worker_use_statistics, collection)

    def search(self, query: ShardQuery) -> Future[ShardAnswer]:
        return self._pool.submit(_worker_search, query)

    def chunks(self, rows: list[int]) -> Future[dict[int, Chunk]]:
        return self._pool.submit(_worker_chunks, rows)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class _Local:
    """A shard in this process, called in turn: for tests that need no parallelism."""

    def __init__(self, root: Path) -> None:
        self._shard = Shard(root)

    def facts(self) -> Future[ShardFacts]:
        return _done(self._shard.facts())

    def use_statistics(self, collection: LexicalStats | None) -> Future[None]:
        self._shard.use_statistics(collection)
        return _done(None)

    def search(self, query: ShardQuery) -> Future[ShardAnswer]:
        return _done(self._shard.search(query))

    def chunks(self, rows: list[int]) -> Future[dict[int, Chunk]]:
        return _done(self._shard.chunks(rows))

    def close(self) -> None:
        self._shard.close()


def _done(value: T) -> Future[T]:
    future: Future[T] = Future()
    future.set_result(value)
    return future


class ShardSearcher:
    """Scatter-gather search over shard roots, with `Retriever.search`'s arguments and result;
    a hit's `row` is the row one index of all the shards' documents would give its chunk."""

    def __init__(
        self,
        roots: Sequence[Path],
        embedder: Embedder,
        named_weight: float = NAMED_WEIGHT,
        processes: bool = True,
        collection_statistics: bool = True,
    ) -> None:
        self._embedder = embedder
        self._named_weight = named_weight
        self._shards: list[_Remote | _Local] = [
            _Remote(root) if processes else _Local(root) for root in roots
        ]
        try:
            facts = [shard.facts().result() for shard in self._shards]
            for fact in facts:
                if fact.embedder.weights_sha256 != embedder.identity.weights_sha256:
                    raise ValueError(
                        f"shard {fact.version} was built with {fact.embedder.model_id}, "
                        f"not {embedder.identity.model_id}"
                    )
            collection = LexicalStats.total(f.stats for f in facts)
            statistics = collection if collection_statistics else None
            for done in [shard.use_statistics(statistics) for shard in self._shards]:
                done.result()
        except BaseException:
            self.close()
            raise
        self._place(facts)
        self._names = DocumentNames(
            {doc_id: info.file_name for doc_id, info in self._documents.items()},
            LexicalIndex.build([]).analyze,
        )

    def _place(self, facts: Sequence[ShardFacts]) -> None:
        """Number every shard's rows as one index of all their documents would."""
        placed = sorted(
            (info.doc_id, shard, count)
            for shard, fact in enumerate(facts)
            for info, count in zip(fact.documents, fact.chunk_counts, strict=True)
        )
        first: dict[str, int] = {}
        size = 0
        for doc_id, _, count in placed:
            first[doc_id] = size
            size += count
        self.size = size
        self.shard_sizes = [sum(fact.chunk_counts) for fact in facts]
        self._documents = {info.doc_id: info for fact in facts for info in fact.documents}
        self._by_file_name = {info.file_name: info.doc_id for info in self._documents.values()}
        self._global: list[npt.NDArray[np.int64]] = []
        self._shard_of = np.zeros(size, dtype=np.int64)
        self._local_of = np.zeros(size, dtype=np.int64)
        for shard, fact in enumerate(facts):
            rows = [
                np.arange(first[info.doc_id], first[info.doc_id] + count, dtype=np.int64)
                for info, count in zip(fact.documents, fact.chunk_counts, strict=True)
            ]
            global_rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
            self._global.append(global_rows)
            self._shard_of[global_rows] = shard
            self._local_of[global_rows] = np.arange(len(global_rows))

    def close(self) -> None:
        for shard in self._shards:
            shard.close()

    def __enter__(self) -> ShardSearcher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def named_documents(self, question: str) -> list[str]:
        return self._names.named(question)

    def resolve_documents(self, names: Sequence[str]) -> list[str]:
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
            raise ValueError(f"k must be at least 1, not {k}")
        timings: dict[str, float] = {}
        if self.size == 0:
            return SearchResult([], timings)
        depth = candidate_depth(self.size, k, distinct_pages)
        named: tuple[str, ...] = ()
        if mode is Mode.HYBRID and not documents and self._named_weight > 0:
            named = tuple(self.named_documents(question))
        query_vector = None
        if mode in (Mode.DENSE, Mode.HYBRID):
            started = time.perf_counter()
            query_vector = self._embedder.embed([question])
            timings["embed_ms"] = _ms(started)
        query = ShardQuery(
            question,
            query_vector,
            depth,
            mode,
            tuple(self.resolve_documents(documents)) if documents else None,
            named,
            distinct_pages,
        )
        started = time.perf_counter()
        answers = [future.result() for future in [s.search(query) for s in self._shards]]
        timings["scatter_ms"] = _ms(started)

        started = time.perf_counter()
        dense = self._merge(answers, "dense", depth)
        lexical = self._merge(answers, "lexical", depth)
        if mode is Mode.HYBRID:
            named_dense = self._merge(answers, "named_dense", depth)
            named_lexical = self._merge(answers, "named_lexical", depth)
            candidates = fusion_candidates(dense, lexical, named_dense, named_lexical)
            sentences = by_score(
                (int(self._global[shard][row]), score)
                for shard, answer in enumerate(answers)
                for row, score in answer.sentences.items()
                if int(self._global[shard][row]) in candidates
            )
            ranked = fuse_hybrid(
                dense, lexical, sentences, named_dense, named_lexical, self._named_weight
            )
        else:
            ranked = dense or lexical
        if distinct_pages:
            pages = {
                int(self._global[shard][row]): page
                for shard, answer in enumerate(answers)
                for row, page in answer.pages.items()
            }
            ranked = first_per_page(ranked, pages)
        ranked = ranked[:k]
        timings["merge_ms"] = _ms(started)
        started = time.perf_counter()
        hits = self._hits(ranked, dense, lexical)
        timings["fetch_ms"] = _ms(started)
        return SearchResult(hits, timings, query_vector)

    def _merge(self, answers: Sequence[ShardAnswer], ranking: str, depth: int) -> Ranking:
        """One ranking from every shard's, by score, ties by row as one index breaks them."""
        merged = by_score(
            (int(self._global[shard][row]), score)
            for shard, answer in enumerate(answers)
            for row, score in getattr(answer, ranking)
        )
        return merged[:depth]

    def _hits(self, ranked: Ranking, dense: Ranking, lexical: Ranking) -> list[Hit]:
        wanted: dict[int, list[int]] = {}
        for row, _ in ranked:
            wanted.setdefault(int(self._shard_of[row]), []).append(int(self._local_of[row]))
        fetching = {s: self._shards[s].chunks(rows) for s, rows in wanted.items()}
        fetched = {s: future.result() for s, future in fetching.items()}
        dense_rank = {row: rank for rank, (row, _) in enumerate(dense, start=1)}
        lexical_rank = {row: rank for rank, (row, _) in enumerate(lexical, start=1)}
        hits = []
        for row, score in ranked:
            chunk = fetched[int(self._shard_of[row])][int(self._local_of[row])]
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


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
