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
    collected = Collector(on_file)
    for found in discover(paths):
        report, document, chunks = _ingest_one(found, chunker, max_bytes)
        collected.add(report, None if document is None else (document, chunks))
    return collected.result


class Collector:
    """Files' results, taken in the order the files were found, into one `IngestResult`; a
    file whose name another file of the batch already has fails. Whoever loads the files (here,
    or workers elsewhere) collects them with it, so that every path reports alike."""

    def __init__(self, on_file: Callable[[FileReport], None] | None = None) -> None:
        self.result = IngestResult()
        self._on_file = on_file
        self._seen: dict[str, Path] = {}

    def __len__(self) -> int:
        return len(self.result.report.files)

    def add(self, report: FileReport, loaded: tuple[Document, tuple[Chunk, ...]] | None) -> None:
        if loaded is not None and loaded[0].doc_id in self._seen:
            document = loaded[0]
            # Ids come from file names, so two files of one name would overwrite each other.
            reason = (
                f"another file named {document.file_name} ({self._seen[document.doc_id]}) "
                "is in this batch; rename one of them to ingest both"
            )
            report, loaded = FileReport(report.path, FileStatus.FAILED, reason=reason), None
        if loaded is not None:
            self._seen[loaded[0].doc_id] = report.path
            self.result.documents.append(loaded)
        self.result.report.files.append(report)
        if self._on_file is not None:
            self._on_file(report)


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
