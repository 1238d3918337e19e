"""Adding, replacing and removing documents: only new or changed files (by SHA-256) are touched,
and of those only the chunks whose text the index has not embedded before."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeAlias, runtime_checkable

import numpy as np

from index.embedder import Embedder, Vectors
from index.store import (
    ChunkingParameters,
    DocumentEntry,
    StoreError,
    UnknownDocumentError,
    check_root,
    current_version,
    load_index,
    write_version,
    writer_lock,
)
from index.vectors import VectorIndexSpec
from ingest.ids import is_legacy_doc_id
from ingest.models import Chunk, Document
from ingest.sentences import sentence_spans

EMBED_BATCH = 256
"""Chunks per embedding call: progress moves after each, and each call's sentences are batched by
length together, so larger calls pad less (64 made the reference corpus's embedding 25% slower
than one call for all)."""
BatchProgress: TypeAlias = Callable[[int], None]
"""Called with the number of chunks just embedded."""


@runtime_checkable
class PlannedProgress(Protocol):
    """Progress that also hears, before the first batch, how many chunks will be embedded in
    all (so that it can show an ETA)."""

    def embedding_planned(self, chunks: int) -> None: ...

    def chunks_embedded(self, count: int) -> None: ...


Progress: TypeAlias = BatchProgress | PlannedProgress
"""A callable is enough for a caller that only counts batches (the benchmarks time them)."""
Spans: TypeAlias = list[tuple[int, int]]
ChunkKey: TypeAlias = tuple[bytes, tuple[tuple[int, int], ...]]
"""A chunk's text hash and its sentence spans: everything its vectors are computed from."""


@dataclass(frozen=True)
class EmbedBatch:
    """One `embed_spans` call's worth of work: up to EMBED_BATCH chunk texts and, for each, the
    sentence spans inside it."""

    texts: tuple[str, ...]
    spans: tuple[Spans, ...]


class BatchEmbedding(Protocol):
    """Who computes an update's vectors: in this process (`InProcessEmbedding`), or elsewhere
    (a cluster) as long as each batch gets exactly the vectors `embed_spans` would give it."""

    def embed_batches(
        self, batches: Sequence[EmbedBatch], progress: BatchProgress | None
    ) -> list[tuple[Vectors, Vectors]]:
        """Each batch's chunk vectors and sentence vectors, in the order of `batches`;
        `progress` hears each batch's chunk count as that batch is done."""
        ...


class InProcessEmbedding:
    """The batches one after another, on the embedder the update was given."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    def embed_batches(
        self, batches: Sequence[EmbedBatch], progress: BatchProgress | None
    ) -> list[tuple[Vectors, Vectors]]:
        results = []
        for batch in batches:
            results.append(self._embedder.embed_spans(batch.texts, batch.spans))
            if progress is not None:
                progress(len(batch.texts))
        return results


class LegacyDocumentIdsError(StoreError):
    """The index holds ids made by an older scheme; only a rebuild may add to it."""


class DocumentIdConflictError(StoreError):
    """Two different file names would share one document id."""


@dataclass
class UpdateResult:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    embedded_chunks: int = 0
    """Chunks of added or replaced documents that were sent to the embedder."""
    reused_chunks: int = 0
    """Chunks of added or replaced documents whose vectors were copied from the index, because
    it already held a chunk with the same text."""
    version: Path | None = None
    """The new version, or None when nothing changed and nothing was written."""


@dataclass(frozen=True)
class _StoredChunk:
    """Where the vectors of one chunk of the current index lie."""

    entry: DocumentEntry
    index: int
    sentence_rows: tuple[int, ...]

    def vector(self) -> Vectors:
        vector: Vectors = self.entry.vectors[self.index]
        return vector

    def sentence_vectors(self) -> Vectors:
        rows = np.asarray(self.sentence_rows, dtype=np.intp)
        vectors: Vectors = self.entry.sentence_vectors[rows]
        return vectors


@dataclass(frozen=True)
class _DocumentPlan:
    """A new or changed document, and which of its chunks can take stored vectors."""

    document: Document
    chunks: tuple[Chunk, ...]
    spans: list[Spans]
    reused: dict[int, _StoredChunk]
    """Stored vectors by the position of the chunk in `chunks`."""

    @property
    def to_embed(self) -> list[int]:
        return [index for index in range(len(self.chunks)) if index not in self.reused]


def update_index(
    root: Path,
    documents: Sequence[tuple[Document, Sequence[Chunk]]],
    embedder: Embedder,
    chunking: ChunkingParameters,
    *,
    remove: Sequence[str] = (),
    rebuild: bool = False,
    vector_spec: VectorIndexSpec | None = None,
    progress: Progress | None = None,
    checkpoint: Callable[[str], None] | None = None,
    embedding: BatchEmbedding | None = None,
    retain_seconds: float = 0.0,
) -> UpdateResult:
    """Bring the index in `root` up to date with `documents`, then drop the `remove` doc ids.

    A changed or added document takes the vectors of every chunk whose text the index already
    holds (in any document, so a renamed copy embeds nothing); only the rest are embedded. A
    `rebuild` starts from nothing, as it exists to re-embed after a model change. `embedding`
    computes the vectors (default: `embedder`, here), while `embedder` still names the model the
    version records. `retain_seconds`: see `write_version`.
    """
    result = UpdateResult()
    with writer_lock(root):
        check_root(root)
        entries: dict[str, DocumentEntry] = {}
        if current_version(root) is not None and not rebuild:
            old = load_index(root, embedder.identity, chunking)
            try:
                entries = {entry.document.doc_id: entry for entry in old.entries()}
            finally:
                old.close()
        if documents:
            # Removing needs no new ids, so an old index can still shed documents.
            _refuse_legacy_ids(root, entries.values())
        _refuse_shared_ids(entries, documents)
        plans = _plan_documents(entries, documents, result)
        _announce_plan(progress, sum(len(plan.to_embed) for plan in plans))
        # A rebuild given nothing (every file failed) must not swap a good index for an empty one.
        changed = bool(plans)
        fresh = _embed_plans(
            embedding or InProcessEmbedding(embedder),
            plans,
            embedder.identity.dimension,
            _batch_progress(progress),
        )
        for plan, (vectors, sentence_vectors) in zip(plans, fresh, strict=True):
            doc_id = plan.document.doc_id
            (result.replaced if doc_id in entries else result.added).append(doc_id)
            entries[doc_id] = _embedded_entry(plan, vectors, sentence_vectors)
            result.embedded_chunks += len(plan.to_embed)
            result.reused_chunks += len(plan.reused)
        for doc_id in remove:
            if entries.pop(doc_id, None) is None:
                known = ", ".join(sorted(entries)) or "none"
                raise UnknownDocumentError(
                    f"no document '{doc_id}' in the index (documents: {known})"
                )
            result.removed.append(doc_id)
            changed = True
        if changed:
            result.version = write_version(
                root,
                list(entries.values()),
                embedder.identity,
                chunking,
                vector_spec,
                checkpoint,
                retain_seconds,
            )
    return result


def _refuse_legacy_ids(root: Path, entries: Iterable[DocumentEntry]) -> None:
    """Ids of older versions could be shared by two names; adding to them could overwrite."""
    for entry in entries:
        doc_id, file_name = entry.document.doc_id, entry.document.file_name
        if is_legacy_doc_id(doc_id, file_name):
            raise LegacyDocumentIdsError(
                f"the index in {root} was built with older document ids (for example "
                f"'{doc_id}' for '{file_name}'), under which two file names can overwrite each "
                f"other; rebuild it with `chancery ingest --rebuild FILES --index {root}`, "
                "naming every file it should hold"
            )


def _refuse_shared_ids(
    entries: Mapping[str, DocumentEntry],
    documents: Sequence[tuple[Document, Sequence[Chunk]]],
) -> None:
    """Replacing is for a new version of the same file name, never for another file."""
    owners = {doc_id: entry.document.file_name for doc_id, entry in entries.items()}
    for document, _ in documents:
        owner = owners.setdefault(document.doc_id, document.file_name)
        if owner != document.file_name:
            raise DocumentIdConflictError(
                f"'{document.file_name}' and '{owner}' both get the document id "
                f"'{document.doc_id}', and one would overwrite the other; rename one of the "
                "files and ingest again"
            )


def _plan_documents(
    entries: Mapping[str, DocumentEntry],
    documents: Sequence[tuple[Document, Sequence[Chunk]]],
    result: UpdateResult,
) -> list[_DocumentPlan]:
    """A plan for each new or changed document; unchanged files go into `result` as such.

    Planning all documents before embedding any lets progress know the total up front.
    """
    pending: list[tuple[Document, Sequence[Chunk]]] = []
    # A file given twice in one call is unchanged the second time, as if added in two calls.
    latest = {doc_id: entry.document.sha256 for doc_id, entry in entries.items()}
    for document, chunks in documents:
        if latest.get(document.doc_id) == document.sha256:
            result.unchanged.append(document.doc_id)
        else:
            pending.append((document, chunks))
            latest[document.doc_id] = document.sha256
    # Hashing every stored chunk costs a pass over the index's text, which loading it has
    # already read; an ingest of only unchanged files skips even that.
    stored = _stored_chunks(entries.values()) if pending else {}
    return [_plan_document(document, chunks, stored) for document, chunks in pending]


def _plan_document(
    document: Document, chunks: Sequence[Chunk], stored: Mapping[ChunkKey, _StoredChunk]
) -> _DocumentPlan:
    spans = [sentence_spans(chunk.text) for chunk in chunks]
    reused = {
        index: found
        for index, (chunk, own) in enumerate(zip(chunks, spans, strict=True))
        if (found := stored.get(_chunk_key(chunk.text, own))) is not None
    }
    return _DocumentPlan(document, tuple(chunks), spans, reused)


def _stored_chunks(entries: Iterable[DocumentEntry]) -> dict[ChunkKey, _StoredChunk]:
    """Every chunk of the current index by what its vectors were computed from."""
    stored: dict[ChunkKey, _StoredChunk] = {}
    for entry in entries:
        rows_by_chunk: dict[int, list[int]] = {}
        for row, (index, _, _) in enumerate(entry.sentences):
            rows_by_chunk.setdefault(index, []).append(row)
        for index, chunk in enumerate(entry.chunks):
            rows = tuple(rows_by_chunk.get(index, ()))
            # The spans come from the stored sentences, not from splitting the text again: if
            # the sentence splitter changed since, the stored sentence vectors do not fit.
            spans = [entry.sentences[row][1:] for row in rows]
            key = _chunk_key(chunk.text, spans)
            stored.setdefault(key, _StoredChunk(entry, index, rows))
    return stored


def _chunk_key(text: str, spans: Sequence[tuple[int, int]]) -> ChunkKey:
    """Equal keys mean the embedder would be given exactly the same strings: the chunk's text
    and the sentence substrings `text[start:end]`."""
    # surrogatepass: a lone surrogate from a broken PDF must hash, not abort the ingest.
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    return digest, tuple((start, end) for start, end in spans)


def _announce_plan(progress: Progress | None, chunks: int) -> None:
    """Tell progress that can use it how many chunks the whole update will embed."""
    if isinstance(progress, PlannedProgress):
        progress.embedding_planned(chunks)


def _batch_progress(progress: Progress | None) -> BatchProgress | None:
    if isinstance(progress, PlannedProgress):
        return progress.chunks_embedded
    return progress


def _embed_plans(
    embedding: BatchEmbedding,
    plans: Sequence[_DocumentPlan],
    dimension: int,
    progress: BatchProgress | None,
) -> list[tuple[Vectors, Vectors]]:
    """The new chunk and sentence vectors of each plan, computed in one go so that an embedding
    spread over many workers can keep them all busy.

    Batches never span two documents: each document's chunks are cut into the same calls as
    when documents were embedded one by one, so its vectors do not change with its neighbours.
    """
    batches: list[EmbedBatch] = []
    counts: list[int] = []
    for plan in plans:
        to_embed = plan.to_embed
        texts = [plan.chunks[index].text for index in to_embed]
        spans = [plan.spans[index] for index in to_embed]
        starts = range(0, len(to_embed), EMBED_BATCH)
        batches.extend(
            EmbedBatch(tuple(texts[s : s + EMBED_BATCH]), tuple(spans[s : s + EMBED_BATCH]))
            for s in starts
        )
        counts.append(len(starts))
    results = iter(embedding.embed_batches(batches, progress))
    empty = np.zeros((0, dimension), dtype=np.float32)
    fresh = []
    for count in counts:
        parts = [next(results) for _ in range(count)]
        fresh.append(
            (
                np.concatenate([empty, *(vectors for vectors, _ in parts)]),
                np.concatenate([empty, *(sentences for _, sentences in parts)]),
            )
        )
    return fresh


def _embedded_entry(plan: _DocumentPlan, fresh: Vectors, fresh_sentences: Vectors) -> DocumentEntry:
    """The plan's document with stored vectors where it has them and `fresh` ones (of its
    chunks to embed, in order) elsewhere."""
    to_embed = plan.to_embed
    dimension = fresh.shape[1]
    vectors = np.empty((len(plan.chunks), dimension), dtype=np.float32)
    if to_embed:
        vectors[to_embed] = fresh
    sentence_parts = [np.zeros((0, dimension), dtype=np.float32)]
    fresh_row = 0
    for index, own in enumerate(plan.spans):
        stored = plan.reused.get(index)
        if stored is None:
            sentence_parts.append(fresh_sentences[fresh_row : fresh_row + len(own)])
            fresh_row += len(own)
        else:
            vectors[index] = stored.vector()
            sentence_parts.append(stored.sentence_vectors())
    sentences = tuple(
        (index, start, end) for index, own in enumerate(plan.spans) for start, end in own
    )
    return DocumentEntry(
        plan.document, plan.chunks, vectors, sentences, np.concatenate(sentence_parts)
    )
