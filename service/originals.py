"""A document's original file as the library view and the page images see it.

Collections keep each document's file as it came (`service.uploads.Originals`: uploads, and
`chancery ingest --collection`); a bare index folder keeps none. What the index records does not
say how large the file was or when it came, so both are read from the kept file: its size, and its
modification time, which is set when those bytes were first kept under that name (a re-ingest of
the same bytes keeps the file, and its time, as they were). A file copied into a data root
without its times (`cp` without `-p`) shows the time of the copy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    # Only the types: service.uploads reads index manifests, and the API schemas import this
    # module for DocFormat.
    from ingest.models import Document
    from service.uploads import Originals

DocFormat = Literal["pdf", "txt", "md", "html", "docx"]
_FORMATS: dict[str, DocFormat] = {
    ".pdf": "pdf",
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".docx": "docx",
}
"""Every suffix a loader reads (`ingest.loaders.LOADERS`), and the format it means: the loader
is chosen by the suffix, so the file name says what the document was read as."""


@dataclass(frozen=True)
class KeptOriginal:
    path: Path
    size: int
    kept_at: datetime


def document_format(file_name: str) -> DocFormat | None:
    """The format the document was read as; None for a name no loader reads."""
    return _FORMATS.get(Path(file_name).suffix.lower())


def kept_original(originals: Originals | None, file_name: str, sha256: str) -> KeptOriginal | None:
    """The document's original, if the collection keeps it."""
    path = originals.find(file_name, sha256) if originals is not None else None
    if path is None:
        return None
    try:
        status = path.stat()
    except OSError:
        return None  # removed since it was found: a collection being deleted
    kept_at = datetime.fromtimestamp(status.st_mtime, UTC).replace(microsecond=0)
    return KeptOriginal(path, status.st_size, kept_at)


def keep_ingested(originals: Originals, files: Iterable[tuple[Path, Document]]) -> list[str]:
    """Copy the files `chancery ingest` read into the collection's originals, each under the
    name and hash the index records for its document; why any was not kept, one line each.

    Called once the index names them: a server's job that collects unreferenced originals
    meanwhile must not remove them, and a file missing for that moment only means no page
    images yet. Keeping never fails the ingest: the index is already written."""
    notes = []
    for path, document in files:
        try:
            kept = originals.copy_in(path, document.file_name, document.sha256)
        except (OSError, ValueError) as exc:
            notes.append(f"{path}: the original is not kept ({exc}); its pages have no images")
            continue
        if kept is None:
            notes.append(
                f"{path}: the original is not kept (the file changed while it was ingested); "
                "ingest it again"
            )
    return notes
