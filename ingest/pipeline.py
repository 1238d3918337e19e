"""Ingest many files: each is loaded and chunked on its own, and a bad file never stops the rest."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.loaders import DEFAULT_MAX_BYTES, Found, discover, load_document
from ingest.models import Chunk, Document, FileReport, FileStatus, IngestReport
from ingest.raw import LoadError

Chunker = Callable[[Document], list[Chunk]]


@dataclass
class IngestResult:
    report: IngestReport = field(default_factory=IngestReport)
    documents: list[tuple[Document, tuple[Chunk, ...]]] = field(default_factory=list)
    """The files that loaded, with their chunks, in the order they were found."""


def ingest_files(
    paths: Iterable[Path],
    chunker: Chunker,
    max_bytes: int = DEFAULT_MAX_BYTES,
    on_file: Callable[[FileReport], None] | None = None,
) -> IngestResult:
    """Load and chunk every file; `on_file` hears about each one as it is done (progress).

    Unsupported files found inside folders are reported as skipped, not failed.
    """
    result = IngestResult()
    seen: dict[str, Path] = {}
    for found in discover(paths):
        path = found.path
        report, document, chunks = _ingest_one(found, chunker, max_bytes)
        if document is not None and document.doc_id in seen:
            # Ids come from file names, so two files of one name would overwrite each other.
            reason = (
                f"another file named {document.file_name} ({seen[document.doc_id]}) "
                "is in this batch; rename one of them to ingest both"
            )
            report, document = FileReport(path, FileStatus.FAILED, reason=reason), None
        if document is not None:
            seen[document.doc_id] = path
            result.documents.append((document, chunks))
        result.report.files.append(report)
        if on_file is not None:
            on_file(report)
    return result


def _ingest_one(
    found: Found, chunker: Chunker, max_bytes: int
) -> tuple[FileReport, Document | None, tuple[Chunk, ...]]:
    path = found.path
    if found.skipped:
        return FileReport(path, FileStatus.SKIPPED, reason=found.skipped), None, ()
    try:
        loaded = load_document(path, max_bytes)
    except LoadError as exc:
        return FileReport(path, FileStatus.FAILED, reason=str(exc)), None, ()
    except Exception as exc:
        reason = f"it could not be parsed ({type(exc).__name__}: {exc})"
        return FileReport(path, FileStatus.FAILED, reason=reason), None, ()
    chunks = tuple(chunker(loaded.document))
    report = FileReport(
        path,
        FileStatus.OK,
        pages=len(loaded.document.pages),
        chunks=len(chunks),
        warnings=loaded.warnings,
    )
    return report, loaded.document, chunks
