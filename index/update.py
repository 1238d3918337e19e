"""Adding, replacing and removing documents: only new or changed files (by SHA-256) are embedded."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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

EMBED_BATCH = 64
Progress = Callable[[int], None]
"""Called with the number of chunks just embedded."""


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
    checkpoint: Callable[[str], None] | None = None,
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
        if documents:
            # Removing needs no new ids, so an old index can still shed documents.
            _refuse_legacy_ids(root, entries.values())
        _refuse_shared_ids(entries, documents)
        # A rebuild given nothing (every file failed) must not swap a good index for an empty one.
        changed = False
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
        if changed:
            result.version = write_version(
                root, list(entries.values()), embedder.identity, chunking, vector_spec, checkpoint
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
