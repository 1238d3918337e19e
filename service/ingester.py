"""Files into an index: parse and chunk every file, then embed and write what changed.

One object for the wiring that `chancery ingest` and the benchmarks share, built from settings
by `service.build`; the steps stay separate so a benchmark can time them apart. Given `Workers`
(a Ray cluster: `service.ray_ingest`), it parses and embeds there; the index is written here
either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from index.embedder import Embedder
from index.store import ChunkingParameters
from index.update import BatchEmbedding, Progress, UpdateResult, update_index
from ingest.chunking import ChunkingConfig, Tokenizer, chunk_document
from ingest.models import Chunk, Document, FileReport
from ingest.pipeline import IngestResult, ingest_files


@dataclass(frozen=True)
class Chunking:
    """How documents are cut: the model's tokenizer and the sizes, in its tokens."""

    tokenizer: Tokenizer
    config: ChunkingConfig

    @property
    def parameters(self) -> ChunkingParameters:
        """What the index records about the chunking, and refuses to mix."""
        return ChunkingParameters(self.config.size, self.config.overlap, self.config.max_tokens)

    def chunk(self, document: Document) -> list[Chunk]:
        return chunk_document(document, self.tokenizer, self.config)


class Workers(Protocol):
    """Processes other than this one that parse files and compute vectors, giving back exactly
    what this process would have."""

    def parse(
        self,
        paths: Iterable[Path],
        chunking: Chunking,
        max_bytes: int,
        on_file: Callable[[FileReport], None] | None,
    ) -> IngestResult:
        """As `ingest_files` would: the same reports and documents, in the same order."""
        ...

    @property
    def embedding(self) -> BatchEmbedding: ...


@dataclass(frozen=True)
class Ingester:
    chunking: Chunking
    embedder: Embedder
    """Loads its model on first embed, so that an ingest with nothing new never waits for it.
    With `workers` it only names the model the index records; they compute the vectors."""
    max_file_bytes: int
    workers: Workers | None = None
    retain_seconds: float = 0.0
    """How long a replaced index version stays for replicas on other hosts (`write_version`)."""

    def parse(
        self, paths: Iterable[Path], on_file: Callable[[FileReport], None] | None = None
    ) -> IngestResult:
        """Load and chunk every file; a bad one is reported and never stops the rest."""
        if self.workers is not None:
            return self.workers.parse(paths, self.chunking, self.max_file_bytes, on_file)
        return ingest_files(paths, self.chunking.chunk, self.max_file_bytes, on_file=on_file)

    def update(
        self,
        root: Path,
        documents: Sequence[tuple[Document, Sequence[Chunk]]],
        *,
        remove: Sequence[str] = (),
        rebuild: bool = False,
        progress: Progress | None = None,
    ) -> UpdateResult:
        """Embed the new or changed documents, drop the `remove` doc ids, and write a new index
        version in `root`."""
        return update_index(
            root,
            documents,
            self.embedder,
            self.chunking.parameters,
            remove=remove,
            rebuild=rebuild,
            progress=progress,
            embedding=None if self.workers is None else self.workers.embedding,
            retain_seconds=self.retain_seconds,
        )
