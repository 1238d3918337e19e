"""The index directory: versioned, written atomically, loaded only by the model that built it.

Layout of an index folder ROOT:

    ROOT/current        symlink to the version in service, switched with one atomic rename
    ROOT/v-<stamp>/     manifest.json, vectors.npy, vectors.faiss, bm25/, records.sqlite
    ROOT/.lock          held while a writer works, so two ingests cannot interleave

A new version is built in a temporary folder, fsynced, renamed into place, and only then does
`current` switch to it. A process killed at any moment leaves `current` pointing at a complete
version, and the next writer clears what it left behind; `WRITE_STEPS` names every step, so a
test can kill a writer at each one. Each version is canonical — documents sorted by id, chunks in
reading order — and its search structures are derived from that order, so an index updated by any
sequence of adds and removes searches exactly like a fresh build of the same files.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as validated_dataclass

from index.durable import fsync_dir, fsync_tree
from index.embedder import EmbedderIdentity, Vectors
from index.lexical import LexicalIndex
from index.records import DocumentInfo, Records, write_records
from index.vectors import VectorIndex, VectorIndexSpec
from ingest.models import Chunk, Document

SCHEMA_VERSION = 1
CURRENT = "current"
MANIFEST = "manifest.json"
_VECTORS = "vectors.npy"
_SENTENCE_VECTORS = "sentence_vectors.npy"
_FAISS = "vectors.faiss"
_BM25 = "bm25"
_RECORDS = "records.sqlite"
_LOCK = ".lock"
WRITE_STEPS = (
    "staging-created",
    "vectors-saved",
    "sentence-vectors-saved",
    "faiss-saved",
    "bm25-saved",
    "records-saved",
    "manifest-saved",
    "staging-synced",
    "version-renamed",
    "root-synced",
    "link-created",
    "current-switched",
    "switch-synced",
    "old-version-removed",
    "leftover-removed",
    "garbage-collected",
)
"""The points `write_version` passes, in order; `current` names the new version from
"current-switched" on. The two removal steps recur once per folder or link removed."""
Checkpoint = Callable[[str], None]
"""Called with each name in `WRITE_STEPS` as a write passes it, so a test can stop it there."""
_LIBRARIES = ("chancery", "faiss-cpu", "bm25s", "sentence-transformers", "torch", "pypdfium2")


class StoreError(Exception):
    """The index cannot be used as asked; the message says what to do."""


class WriterBusyError(StoreError):
    """Another process holds the index's writer lock; trying again later may succeed."""


class UnknownDocumentError(StoreError):
    """A document named by the caller is not in the index."""


@validated_dataclass(frozen=True)
class ChunkingParameters:
    # A dataclass, not a BaseModel: callers build it positionally from a ChunkingConfig.
    size: int
    overlap: int
    max_tokens: int


class ManifestDocument(BaseModel):
    model_config = ConfigDict(frozen=True)

    doc_id: str
    file_name: str
    title: str
    sha256: str
    pages: int
    chunks: int


class Manifest(BaseModel):
    """manifest.json: what built one version of an index. `model_dump()` gives it as plain data."""

    model_config = ConfigDict(frozen=True)

    schema_version: int
    embedder: EmbedderIdentity
    chunking: ChunkingParameters
    vector_index: VectorIndexSpec
    documents: tuple[ManifestDocument, ...]
    chunk_count: int
    created_at: str
    libraries: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class DocumentEntry:
    """A document, its chunks and their vectors, as one version of an index holds them."""

    document: Document
    chunks: tuple[Chunk, ...]
    vectors: Vectors
    sentences: tuple[tuple[int, int, int], ...]
    """(index of the chunk in `chunks`, start, end) of each sentence, in reading order."""
    sentence_vectors: Vectors


class Index:
    """One loaded, read-only version of an index."""

    def __init__(self, directory: Path, manifest: Manifest) -> None:
        self.directory = directory
        self.manifest = manifest
        self.vectors = VectorIndex.load(directory / _FAISS, manifest.vector_index)
        self.lexical = LexicalIndex.load(directory / _BM25)
        self.records = Records(directory / _RECORDS)
        # Read on first use and kept: a search ranks its candidates' sentences every time.
        self._sentence_vectors: Vectors | None = None
        self._sentence_ranges: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None
        self._ranges_read = False

    @property
    def version(self) -> str:
        return self.directory.name

    def documents(self) -> list[DocumentInfo]:
        return self.records.documents()

    def stored_vectors(self) -> Vectors:
        vectors: Vectors = np.load(self.directory / _VECTORS, mmap_mode="r", allow_pickle=False)
        return vectors

    def sentence_vectors(self) -> Vectors:
        """Memory-mapped, once per loaded version (two threads may map it twice: harmless);
        float16 (float32 in versions written before December 2026): readers convert the rows
        they take."""
        if self._sentence_vectors is None:
            self._sentence_vectors = np.load(
                self.directory / _SENTENCE_VECTORS, mmap_mode="r", allow_pickle=False
            )
        return self._sentence_vectors

    def sentence_ranges(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
        """`Records.sentence_ranges`, read once per loaded version."""
        if not self._ranges_read:
            self._sentence_ranges = self.records.sentence_ranges()
            self._ranges_read = True
        return self._sentence_ranges

    def entries(self) -> Iterator[DocumentEntry]:
        """Every document with its chunks and vectors (to carry into a new version)."""
        vectors = self.stored_vectors()
        sentence_vectors = self.sentence_vectors()
        for info in self.documents():
            pages = tuple(self.records.pages(info.doc_id))
            document = Document(info.doc_id, info.file_name, info.title, info.sha256, pages)
            rows_and_chunks = self.records.chunks_of(info.doc_id)
            rows = [row for row, _ in rows_and_chunks]
            first = rows[0] if rows else 0
            spans = self.records.sentences_of(rows)
            yield DocumentEntry(
                document,
                tuple(chunk for _, chunk in rows_and_chunks),
                np.array(vectors[rows], dtype=np.float32),
                tuple((span.chunk_row - first, span.start, span.end) for span in spans),
                np.array(sentence_vectors[[span.row for span in spans]], dtype=np.float32),
            )

    def close(self) -> None:
        self.records.close()


def current_version(root: Path) -> Path | None:
    link = root / CURRENT
    if not link.is_symlink():
        return None
    return root / link.readlink()


def require_index(root: Path) -> Path:
    """The version `root/current` points to; an error saying what to do when there is none."""
    version = current_version(root)
    if version is None:
        raise StoreError(
            f"{root} holds no index; build one with `chancery ingest FILES --index {root}`"
        )
    return version


def load_index(
    root: Path, embedder: EmbedderIdentity, chunking: ChunkingParameters | None = None
) -> Index:
    """Load the version `root/current` points to, refusing one built differently."""
    version = require_index(root)
    manifest = read_manifest(version)
    check_compatible(manifest, embedder, chunking, root)
    return Index(version, manifest)


def read_manifest(version: Path) -> Manifest:
    try:
        return Manifest.model_validate_json((version / MANIFEST).read_bytes())
    except (OSError, ValidationError) as exc:
        problem = _first_problem(exc) if isinstance(exc, ValidationError) else str(exc)
        raise StoreError(
            f"the index manifest in {version} is unreadable ({problem}); rebuild the index"
        ) from exc


def _first_problem(error: ValidationError) -> str:
    # The whole report repeats itself per field and links to pydantic's docs; one line says enough.
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def check_compatible(
    manifest: Manifest,
    embedder: EmbedderIdentity,
    chunking: ChunkingParameters | None,
    root: Path,
) -> None:
    if manifest.schema_version != SCHEMA_VERSION:
        raise StoreError(
            f"the index in {root} has schema version {manifest.schema_version}, this Chancery "
            f"reads version {SCHEMA_VERSION}; rebuild it with `chancery ingest --rebuild`"
        )
    built = manifest.embedder
    if (built.weights_sha256, built.dimension) != (embedder.weights_sha256, embedder.dimension):
        raise StoreError(
            f"the index in {root} was built with the model {built.model_id} "
            f"(weights {built.weights_sha256[:12]}…, {built.dimension} dimensions) but this "
            f"process uses {embedder.model_id} ({embedder.weights_sha256[:12]}…); set "
            "CHANCERY_MODEL_PATH to the model that built it, or rebuild with `--rebuild`"
        )
    if chunking is not None and chunking != manifest.chunking:
        raise StoreError(
            f"the index in {root} was chunked with {asdict(manifest.chunking)}, the settings ask "
            f"for {asdict(chunking)}; rebuild it with `chancery ingest --rebuild` to change them"
        )


@contextlib.contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / _LOCK).open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise WriterBusyError(
                f"another process is writing the index in {root}; try again when it ends"
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_root(root: Path) -> None:
    """Refuse to write into a folder that holds something other than an index."""
    if root.exists() and not root.is_dir():
        raise StoreError(f"{root} is a file, not an index folder")
    if root.is_dir() and current_version(root) is None:
        strangers = [
            p.name for p in root.iterdir() if p.name != _LOCK and not p.name.startswith(".tmp-")
        ]
        if strangers:
            raise StoreError(
                f"{root} is not empty and holds no index; choose a new or empty folder"
            )


def write_version(
    root: Path,
    entries: Sequence[DocumentEntry],
    embedder: EmbedderIdentity,
    chunking: ChunkingParameters,
    vector_spec: VectorIndexSpec | None = None,
    checkpoint: Checkpoint | None = None,
    retain_seconds: float = 0.0,
) -> Path:
    """Write a complete new version and switch `current` to it; call under `writer_lock`.

    Older versions are removed, except the one `current` named before and any that was replaced
    less than `retain_seconds` ago: replicas on other hosts of a network file system cannot read
    a removed version's files even while they hold them open, so they need time to switch.
    """
    reached = checkpoint or _no_checkpoint
    ordered = sorted(entries, key=lambda e: e.document.doc_id)
    chunks = [chunk for entry in ordered for chunk in entry.chunks]
    vectors = _stack([entry.vectors for entry in ordered], embedder.dimension)
    sentence_vectors = _stack([entry.sentence_vectors for entry in ordered], embedder.dimension)
    sentences: list[tuple[int, int, int]] = []
    base = 0
    for entry in ordered:
        sentences.extend((base + index, start, end) for index, start, end in entry.sentences)
        base += len(entry.chunks)
    if len(vectors) != len(chunks) or len(sentence_vectors) != len(sentences):
        raise ValueError(
            f"{len(chunks)} chunks but {len(vectors)} vectors, or {len(sentences)} sentences "
            f"but {len(sentence_vectors)} sentence vectors"
        )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    staging = root / f".tmp-{stamp}-{os.getpid()}"
    previous = current_version(root)
    staging.mkdir(parents=True)
    try:
        reached("staging-created")
        np.save(staging / _VECTORS, vectors, allow_pickle=False)
        reached("vectors-saved")
        # Half precision: at one million chunks these are 7 GiB instead of 14; the answerers and
        # the sentence ranking read them back as float32 (cosines move by under 1e-3).
        np.save(
            staging / _SENTENCE_VECTORS, sentence_vectors.astype(np.float16), allow_pickle=False
        )
        reached("sentence-vectors-saved")
        vector_index = VectorIndex.build(vectors, vector_spec)
        vector_index.save(staging / _FAISS)
        reached("faiss-saved")
        LexicalIndex.build([_lexical_text(c) for c in chunks]).save(staging / _BM25)
        reached("bm25-saved")
        write_records(staging / _RECORDS, [e.document for e in ordered], chunks, sentences)
        reached("records-saved")
        manifest = Manifest(
            schema_version=SCHEMA_VERSION,
            embedder=embedder,
            chunking=chunking,
            vector_index=vector_index.spec,
            documents=tuple(
                ManifestDocument(
                    doc_id=e.document.doc_id,
                    file_name=e.document.file_name,
                    title=e.document.title,
                    sha256=e.document.sha256,
                    pages=len(e.document.pages),
                    chunks=len(e.chunks),
                )
                for e in ordered
            ),
            chunk_count=len(chunks),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            libraries=_library_versions(),
        )
        (staging / MANIFEST).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
        reached("manifest-saved")
        fsync_tree(staging)
        reached("staging-synced")
        version = root / f"v-{stamp}"
        staging.rename(version)
        reached("version-renamed")
        fsync_dir(root)
        reached("root-synced")
        _switch_current(root, version, reached)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _collect_garbage(root, [version, previous], retain_seconds, reached)
    reached("garbage-collected")
    return version


def _no_checkpoint(_: str) -> None:
    pass


def _stack(parts: Sequence[Vectors], dimension: int) -> Vectors:
    if not parts:
        return np.zeros((0, dimension), dtype=np.float32)
    return np.concatenate(parts).astype(np.float32, copy=False)


def _lexical_text(chunk: Chunk) -> str:
    # Section titles carry words a question uses ("recommendations", "China") that the passage
    # itself may not repeat.
    return "\n".join([*chunk.heading_path[-1:], chunk.text])


def _switch_current(root: Path, version: Path, reached: Checkpoint) -> None:
    temporary = root / f".tmp-link-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    temporary.symlink_to(version.name)
    reached("link-created")
    temporary.replace(root / CURRENT)
    reached("current-switched")
    fsync_dir(root)
    reached("switch-synced")


def _collect_garbage(
    root: Path, keep: Sequence[Path | None], retain_seconds: float, reached: Checkpoint
) -> None:
    # The version `current` named before the switch stays, so a reader that resolved the old link
    # can finish; the newest by name might instead be one a killed writer renamed but never served.
    kept = {version.name for version in keep if version is not None}
    versions = sorted(path for path in root.glob("v-*") if path.is_dir())
    now = time.time()
    for old, successor in itertools.pairwise(versions):
        # A version was replaced when the next one was written (its folder's time: the files
        # were written into it just before it was renamed into place).
        if now - successor.stat().st_mtime < retain_seconds:
            kept.add(old.name)
    for old in versions:
        if old.name not in kept:
            shutil.rmtree(old, ignore_errors=True)
            reached("old-version-removed")
    for leftover in sorted(root.glob(".tmp-*")):
        # Staging folders and links of writers that were killed; the lock says none is running
        # now, and a killed writer's pid may since have been given to this very process.
        if leftover.is_symlink():
            leftover.unlink(missing_ok=True)
        elif leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            continue
        reached("leftover-removed")


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions
