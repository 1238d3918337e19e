"""From a file on disk to a cleaned Document: format dispatch, size limits, page checks."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.cleaning import clean_document
from ingest.docx import load_docx
from ingest.html import load_html
from ingest.ids import make_doc_id, readable_name
from ingest.models import Document
from ingest.pdf import load_pdf
from ingest.plaintext import load_markdown, load_text
from ingest.raw import LoadError, RawDocument

Loader = Callable[[bytes], RawDocument]

LOADERS: dict[str, Loader] = {
    ".pdf": load_pdf,
    ".txt": load_text,
    ".text": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".docx": load_docx,
}
DEFAULT_MAX_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class LoadedDocument:
    document: Document
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Found:
    path: Path
    skipped: str = ""
    """Why a file found inside a folder is left out; empty when it is to be loaded."""


def supported(path: Path) -> bool:
    return path.suffix.lower() in LOADERS


def unsupported_reason(path: Path) -> str:
    kinds = ", ".join(sorted(LOADERS))
    kind = readable_name(path.suffix or path.name)
    return f"unsupported file type '{kind}' (Chancery reads {kinds})"


def discover(paths: Iterable[Path]) -> Iterator[Found]:
    """Files named directly, and every file found below folders (hidden ones left out).

    Unsupported files below a folder come out skipped, with the reason, so that a report can
    name them; a file named directly is always loaded, and fails if it cannot be.
    """
    for path in paths:
        if not path.is_dir():
            yield Found(path)
            continue
        for found in sorted(path.rglob("*")):
            relative = found.relative_to(path).parts
            if not found.is_file() or any(part.startswith(".") for part in relative):
                continue
            yield Found(found) if supported(found) else Found(found, unsupported_reason(found))


def load_document(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> LoadedDocument:
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise LoadError(unsupported_reason(path))
    if not path.exists():
        raise LoadError("no such file")
    if not path.is_file():
        raise LoadError("it is not a regular file")
    size = path.stat().st_size
    if size > max_bytes:
        raise LoadError(f"it is {size / 2**20:.0f} MiB, over the {max_bytes / 2**20:.0f} MiB limit")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(f"it cannot be read ({exc.strerror})") from exc
    return load_bytes(path.name, data, loader)


def load_bytes(file_name: str, data: bytes, loader: Loader | None = None) -> LoadedDocument:
    loader = loader or LOADERS.get(Path(file_name).suffix.lower())
    if loader is None:
        raise LoadError(unsupported_reason(Path(file_name)))
    raw = loader(data)
    pages = clean_document(raw)
    blank = [page.number for page in pages if not page.text.strip()]
    if len(blank) == len(pages):
        raise LoadError(
            f"none of its {len(pages)} page(s) has extractable text; it looks scanned — "
            "run OCR on it first (for example with ocrmypdf)"
        )
    warnings: list[str] = []
    if blank:
        warnings.append(
            f"no extractable text on page(s) {_page_list(blank)} (scanned images?); "
            "those pages cannot be searched or cited"
        )
    # Undecodable bytes reach Python as lone surrogates, which JSON and SQLite refuse; the id
    # still hashes the exact bytes, so two such names stay two documents.
    shown = readable_name(file_name)
    if shown != file_name:
        warnings.append(f"its name is not valid UTF-8; it is shown as '{shown}'")
    first_heading = next((h.text for page in pages for h in page.headings), None)
    document = Document(
        doc_id=make_doc_id(file_name),
        file_name=shown,
        title=raw.title or first_heading or Path(shown).stem,
        sha256=hashlib.sha256(data).hexdigest(),
        pages=pages,
    )
    return LoadedDocument(document, tuple(warnings))


def _page_list(numbers: list[int]) -> str:
    """1, 2, 3, 7 -> '1-3, 7'."""
    ranges: list[str] = []
    start = previous = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        ranges.append(str(start) if start == previous else f"{start}-{previous}")
        if number is not None:
            start = previous = number
    return ", ".join(ranges)
