"""Adding, replacing and removing documents: only new or changed files (by SHA-256) are embedded."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.embedder import Embedder, Vectors
from index.store import (
    ChunkingParameters,
    DocumentEntry,
    UnknownDocumentError,
    check_root,
    current_version,
    load_index,
    write_version,
    writer_lock,
)
from index.vectors import VectorIndexSpec
from ingest.models import Chunk, Document
from ingest.sentences import sentence_spans

EMBED_BATCH = 64
Progress = Callable[[int], None]
"""Called with the number of chunks just embedded."""


@dataclass
class UpdateResult:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    embedded_chunks: int = 0
    version: Path | None = None
    """The new version, or None when nothing changed and nothing was written."""


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
) -> UpdateResult:
    """Bring the index in `root` up to date with `documents`, then drop the `remove` doc ids."""
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
        changed = rebuild
        for document, chunks in documents:
            existing = entries.get(document.doc_id)
            if existing is not None and existing.document.sha256 == document.sha256:
                result.unchanged.append(document.doc_id)
                continue
            spans = [sentence_spans(chunk.text) for chunk in chunks]
            sentences = tuple(
                (index, start, end) for index, own in enumerate(spans) for start, end in own
            )
            vectors, sentence_vectors = _embed(embedder, chunks, spans, progress)
            result.embedded_chunks += len(chunks)
            entries[document.doc_id] = DocumentEntry(
                document, tuple(chunks), vectors, sentences, sentence_vectors
            )
            (result.replaced if existing is not None else result.added).append(document.doc_id)
            changed = True
        for doc_id in remove:
            if entries.pop(doc_id, None) is None:
                known = ", ".join(sorted(entries)) or "none"
                raise UnknownDocumentError(
                    f"no document '{doc_id}' in the index (documents: {known})"
                )
            result.removed.append(doc_id)
            changed = True
        if changed or current_version(root) is None:
            result.version = write_version(
                root, list(entries.values()), embedder.identity, chunking, vector_spec
            )
    return result


def _embed(
    embedder: Embedder,
    chunks: Sequence[Chunk],
    spans: Sequence[list[tuple[int, int]]],
    progress: Progress | None,
) -> tuple[Vectors, Vectors]:
    """Chunk vectors and their sentences' vectors, in batches so progress can be shown."""
    dimension = embedder.identity.dimension
    chunk_parts = [np.zeros((0, dimension), dtype=np.float32)]
    sentence_parts = [np.zeros((0, dimension), dtype=np.float32)]
    for start in range(0, len(chunks), EMBED_BATCH):
        batch = chunks[start : start + EMBED_BATCH]
        vectors, sentence_vectors = embedder.embed_spans(
            [chunk.text for chunk in batch], spans[start : start + EMBED_BATCH]
        )
        chunk_parts.append(vectors)
        sentence_parts.append(sentence_vectors)
        if progress is not None:
            progress(len(batch))
    return np.concatenate(chunk_parts), np.concatenate(sentence_parts)
