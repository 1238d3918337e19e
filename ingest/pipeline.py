"""Ingest many files: each is loaded and chunked on its own, and a bad file never stops the rest."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.loaders import DEFAULT_MAX_BYTES, discover, load_document
from ingest.models import Chunk, Document, FileReport, FileStatus
from ingest.raw import LoadError

Chunker = Callable[[Document], list[Chunk]]


@dataclass(frozen=True)
class IngestedFile:
    report: FileReport
    document: Document | None = None
    chunks: tuple[Chunk, ...] = ()


def ingest_files(
    paths: Iterable[Path], chunker: Chunker, max_bytes: int = DEFAULT_MAX_BYTES
) -> Iterator[IngestedFile]:
    """Yield one result per file, in order, so callers can show progress as it happens."""
    for path in discover(paths):
        try:
            loaded = load_document(path, max_bytes)
        except LoadError as exc:
            yield IngestedFile(FileReport(path, FileStatus.FAILED, reason=str(exc)))
            continue
        except Exception as exc:
            reason = f"it could not be parsed ({type(exc).__name__}: {exc})"
            yield IngestedFile(FileReport(path, FileStatus.FAILED, reason=reason))
            continue
        chunks = tuple(chunker(loaded.document))
        report = FileReport(
            path,
            FileStatus.OK,
            pages=len(loaded.document.pages),
            chunks=len(chunks),
            warnings=loaded.warnings,
        )
        yield IngestedFile(report, loaded.document, chunks)
