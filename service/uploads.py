"""Uploaded files: limits enforced while reading, the type sniffed from the bytes, names made safe.

An upload is streamed into a staging folder of its own (`UploadBatch`): at most one chunk is in
memory, and reading stops as soon as a file or the request passes its limit. Each file's bytes are
hashed and sniffed as they pass, so nothing is read twice. The type comes from the bytes: a PDF
has `%PDF-` in its first 1,024 bytes (as PDFium and the PDF loader require), a Word document is a
ZIP archive holding `word/document.xml`, HTML is text that opens with one of the tags the WHATWG
sniffing standard lists, and text is anything else without NUL or control bytes. The name's
suffix never overrides the bytes; it only chooses between the text kinds (`.md` and `.txt` read
the same bytes differently). A name without a suffix gets the sniffed one, as does a PDF or a Word
document whose name ends in something else (`Strategy v1.2` becomes `Strategy v1.2.pdf`).

Text that is not valid UTF-8 but holds no control bytes is accepted, because the text loader reads
it as Windows-1252 and `chancery ingest` accepts it: an upload should not refuse what the command
line reads. UTF-16 and UTF-32 are refused with advice, as the loader would refuse them too.

Client file names are never paths: `safe_file_name` turns any string into one file name, and that
name is what the document is called (its id derives from it). Originals are kept by content,
`originals/<sha256>/<file name>`: the index manifest records both for each document, so the
manifest is the map from document to original and cannot disagree with the index, whatever
moment a crash picks. A re-upload of a name with new bytes lands beside the old file; once the
index no longer names the old bytes, `Originals.collect_garbage` removes them. `chancery ingest
--collection` keeps the files it read the same way (`Originals.copy_in`), so that the page viewer
can draw their pages.
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import shutil
import unicodedata
import zipfile
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Set
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import filetype  # type: ignore[import-untyped]

from index.durable import fsync_dir, fsync_file
from index.store import read_manifest
from ingest.loaders import unsupported_reason
from service.errors import ChanceryError

MiB = 1024 * 1024
MAX_NAME_BYTES = 200
"""Well under the 255 bytes most file systems allow, leaving room for a suffix and temp prefixes."""
FALLBACK_NAME = "upload"
CHUNK_BYTES = MiB


class UploadError(ChanceryError):
    """An upload is refused as a whole; the message says which limit and what to do."""

    status = 400
    exit_code = 1


class UploadTooLargeError(UploadError):
    status = 413


class TooManyFilesError(UploadError):
    status = 413


@dataclass(frozen=True)
class UploadLimits:
    max_file_bytes: int = 200 * MiB
    """The same default as `CHANCERY_MAX_FILE_BYTES` for `chancery ingest`."""
    max_files: int = 20
    max_total_bytes: int = 512 * MiB

    def __post_init__(self) -> None:
        if min(self.max_file_bytes, self.max_files, self.max_total_bytes) < 1:
            raise ValueError(f"upload limits must be positive: {self}")


class Kind(StrEnum):
    PDF = "pdf"
    DOCX = "docx"
    HTML = "html"
    TEXT = "text"


_TEXT_KINDS = frozenset({Kind.HTML, Kind.TEXT})
SUFFIX_KINDS: dict[str, frozenset[Kind]] = {
    ".pdf": frozenset({Kind.PDF}),
    ".docx": frozenset({Kind.DOCX}),
    ".txt": _TEXT_KINDS,
    ".text": _TEXT_KINDS,
    ".md": _TEXT_KINDS,
    ".markdown": _TEXT_KINDS,
    ".html": _TEXT_KINDS,
    ".htm": _TEXT_KINDS,
}
"""What each suffix Chancery reads may hold; the keys are the loaders' suffixes."""
_SUFFIX_FOR = {Kind.PDF: ".pdf", Kind.DOCX: ".docx", Kind.HTML: ".html", Kind.TEXT: ".txt"}
_WHAT = {Kind.PDF: "a PDF", Kind.DOCX: "a Word document", Kind.HTML: "text", Kind.TEXT: "text"}
_READS = "Chancery reads PDF, Word (.docx), HTML, Markdown and plain text"
_HEAD_BYTES = 8192
"""Enough for every signature here and for `filetype`, which reads at most this many."""
_PDF_WINDOW = 1024
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_DOCX_PART = "word/document.xml"
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x19\x1b-\x1f]")
"""Bytes no text file holds: C0 controls except tab, line and page breaks and DOS's end mark."""
_HTML_START = re.compile(
    rb"(?:<!doctype html|<html|<head|<script|<iframe|<h1|<div|<font|<table|<a|<style|<title"
    rb"|<b|<body|<br|<p)[ \t\n\f\r>]|<!--",
    re.IGNORECASE,
)
"""The WHATWG MIME sniffing standard's HTML signatures, after leading whitespace."""
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_WIDE_SAMPLE = 32
"""Bytes of UTF-16 needed to tell it from binary data without a byte order mark."""
_ARCHIVES = frozenset(
    {"zip", "tar", "rar", "gz", "bz2", "7z", "xz", "zst", "lz", "lz4", "lzo", "z", "br", "ar"}
    | {"cab", "deb", "rpm"}
)
_DOCUMENTS = frozenset({"doc", "docx", "odt", "xls", "xlsx", "ods", "ppt", "pptx", "odp"})
_JOINERS = "\u200c\u200d"
_LEADING = " .-" + _JOINERS
"""Stripped from the start: a dot hides a file, a dash reads as a command-line option."""
_TRAILING = " ." + _JOINERS
_MAX_SUFFIX_CHARS = 16
_SHA256 = re.compile(r"[0-9a-f]{64}")


class Readable(Protocol):
    """A binary file object: an open file, a SpooledTemporaryFile (Starlette's UploadFile.file)."""

    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True)
class Sniffed:
    kind: Kind | None
    """What Chancery can read the bytes as; None when it cannot read them."""
    looks_like: str
    """The bytes in words, for messages: "a PDF", "a ZIP archive", "a PNG image"."""
    problem: str = ""
    """A reason that says more than "it is not X" (UTF-16 text, an empty file)."""


@dataclass(frozen=True)
class StagedFile:
    name: str
    """The document's file name: safe, with the suffix of its sniffed kind."""
    kind: Kind
    size: int
    sha256: str
    path: Path


@dataclass(frozen=True)
class Refusal:
    name: str
    """The safe form of the name the client sent."""
    reason: str
    """Worded like the reasons `chancery ingest` prints ("it is not a PDF (...)")."""

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def safe_file_name(raw: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """One file name from whatever a client sent: never a path, never empty, never hidden.

    Control, invisible-format and unpaired surrogate characters go (line breaks and tabs become
    spaces), the text is NFC-normalised, the last part of any `/` or `\\` path is kept, runs of
    whitespace become one space, leading dots, dashes and spaces and trailing dots and spaces
    go, and the name is cut to `max_bytes` of UTF-8, keeping its suffix.
    """
    text = unicodedata.normalize("NFC", "".join(_name_char(char) for char in raw))
    components = [part for part in re.split(r"[/\\]", text) if part.strip()]
    text = " ".join(components[-1].split()) if components else ""
    text = text.lstrip(_LEADING).rstrip(_TRAILING)
    return _fit(text, max_bytes) if text else FALLBACK_NAME


def _name_char(char: str) -> str:
    category = unicodedata.category(char)
    if category in ("Cc", "Zl", "Zp"):
        return " " if char.isspace() else ""
    # Format characters are invisible: bidirectional controls can make `fdp.exe` show as
    # `exe.pdf`. The joiners stay, because Persian and Indic names need them.
    if category == "Cs" or (category == "Cf" and char not in _JOINERS):
        return ""
    return char


def _fit(name: str, max_bytes: int) -> str:
    """`name` cut to `max_bytes` of UTF-8, its suffix kept whole."""
    if len(name.encode()) <= max_bytes:
        return name
    stem, suffix = _split_suffix(name)
    budget = max_bytes - len(suffix.encode())
    # Cutting the bytes may split a character; "ignore" drops its leftover bytes.
    cut = stem.encode()[: max(budget, 0)].decode("utf-8", "ignore")
    cut = unicodedata.normalize("NFC", cut).rstrip(_TRAILING)
    while cut and len(cut.encode()) > budget:
        cut = cut[:-1].rstrip(_TRAILING)
    return f"{cut or FALLBACK_NAME}{suffix}"


def _split_suffix(name: str) -> tuple[str, str]:
    dot = name.rfind(".")
    suffix = name[dot:] if dot > 0 else ""
    if 1 < len(suffix) <= _MAX_SUFFIX_CHARS + 1 and suffix[1:].isalnum():
        return name[:dot], suffix
    return name, ""


def document_name(safe_name: str, sniffed: Sniffed) -> str | Refusal:
    """The file name the document gets, or why the bytes cannot be it.

    A suffix Chancery reads must fit the bytes; any other name gets the sniffed kind's suffix when
    the bytes are a PDF or a Word document. Text under another suffix (`.csv`, `.rtf`, `.json`)
    is refused as `chancery ingest` refuses it: that suffix names a format, and reading its markup
    as prose would make poor passages.
    """
    suffix = Path(safe_name).suffix.lower()
    allowed = SUFFIX_KINDS.get(suffix)
    if sniffed.kind is None and sniffed.problem:
        return Refusal(safe_name, sniffed.problem)
    if allowed is not None:
        if sniffed.kind in allowed:
            return safe_name
        expected = _WHAT[next(iter(allowed))]
        return Refusal(safe_name, f"it is not {expected} (it looks like {sniffed.looks_like})")
    if sniffed.kind is None:
        return Refusal(
            safe_name,
            f"it is a type Chancery does not read (it looks like {sniffed.looks_like}); {_READS}",
        )
    if suffix and sniffed.kind in _TEXT_KINDS:
        return Refusal(safe_name, unsupported_reason(Path(safe_name)))
    ending = _SUFFIX_FOR[sniffed.kind]
    return _fit(safe_name, MAX_NAME_BYTES - len(ending)) + ending


class _Sniffer:
    """Watches a file's bytes go by and says what they are at the end."""

    def __init__(self) -> None:
        self.size = 0
        self._head = bytearray()
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._utf8 = True
        self._binary = False

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if len(self._head) < _HEAD_BYTES:
            self._head += chunk[: _HEAD_BYTES - len(self._head)]
        if not self._binary and _CONTROL.search(chunk):
            self._binary = True
        if self._utf8 and not self._binary:
            try:
                self._decoder.decode(chunk)
            except UnicodeDecodeError:
                self._utf8 = False

    def result(self, path: Path) -> Sniffed:
        """What the bytes fed so far are; `path` holds them, for a look inside ZIP archives."""
        head = bytes(self._head)
        if self.size == 0:
            return Sniffed(None, "an empty file", problem="the file is empty")
        # A PDF may have bytes before its header; a text that mentions "%PDF-" is still text.
        if head.startswith(b"%PDF-") or (self._binary and b"%PDF-" in head[:_PDF_WINDOW]):
            return Sniffed(Kind.PDF, "a PDF")
        if head.startswith(_ZIP_MAGIC):
            return _sniff_zip(path, head)
        if not self._binary:
            if self._utf8:
                try:
                    self._decoder.decode(b"", final=True)
                except UnicodeDecodeError:
                    self._utf8 = False
            if _HTML_START.match(head.removeprefix(codecs.BOM_UTF8).lstrip(b" \t\n\f\r")):
                return Sniffed(Kind.HTML, "an HTML page")
            if self._utf8:
                return Sniffed(Kind.TEXT, "plain text")
            return Sniffed(Kind.TEXT, "plain text that is not UTF-8 (read as Windows-1252)")
        described = _describe(head)
        wide = "" if described else _wide_text(head)
        if wide:
            return Sniffed(
                None,
                f"{wide} text",
                problem=f"it is {wide} text, which Chancery does not read; save it as UTF-8",
            )
        return Sniffed(None, described or "binary data of no type Chancery knows")


def sniff_file(path: Path) -> Sniffed:
    """What the file at `path` holds, by its bytes alone."""
    sniffer = _Sniffer()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            sniffer.feed(chunk)
    return sniffer.result(path)


def _sniff_zip(path: Path, head: bytes) -> Sniffed:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return Sniffed(None, "a damaged ZIP archive")
    if _DOCX_PART in names:
        return Sniffed(Kind.DOCX, "a Word document")
    return Sniffed(None, _describe(head) or "a ZIP archive")


def _wide_text(head: bytes) -> str:
    """The wide encoding the bytes are text in ("UTF-16", "UTF-32"), or "" if none."""
    for bom, name in _WIDE_BOMS:
        if head.startswith(bom):
            return name
    # Without a byte order mark: text in UTF-16 decodes to printable characters, and Latin
    # text has a NUL in every other byte.
    sample = head[: _WIDE_SAMPLE - _WIDE_SAMPLE % 2] if len(head) >= _WIDE_SAMPLE else b""
    for encoding, nuls in (("utf-16-le", sample[1::2]), ("utf-16-be", sample[0::2])):
        if sample and nuls.count(0) > len(nuls) // 2:
            try:
                text = sample.decode(encoding)
            except UnicodeDecodeError:
                continue
            if all(char.isprintable() or char.isspace() for char in text):
                return "UTF-16"
    return ""


def _describe(head: bytes) -> str:
    """Foreign bytes in words ("a ZIP archive", "a PNG image"); "" when `filetype` does not know."""
    guess = filetype.guess(head)
    if guess is None:
        return ""
    extension = str(guess.extension)
    major = str(guess.mime).split("/", 1)[0]
    if major in ("image", "video", "audio", "font"):
        noun = major
    elif extension.lower() in _ARCHIVES:
        noun = "archive"
    elif extension.lower() in _DOCUMENTS:
        noun = "document"
    else:
        noun = "file"
    label = extension.upper()
    article = "an" if label[:1] in tuple("AEFHILMNORSX") else "a"
    return f"{article} {label} {noun}"


@dataclass
class UploadBatch:
    """The files of one upload request, streamed into `directory` (a folder of their own).

    Each `add_*` reads one file. It raises UploadTooLargeError or TooManyFilesError when a limit
    is passed (call `discard` then: the request is refused whole), and otherwise returns the
    staged file or the reason it was refused, which the job reports beside the ingested files.
    """

    directory: Path
    limits: UploadLimits = field(default_factory=UploadLimits)
    staged: list[StagedFile] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    total_bytes: int = 0

    def add_file(self, client_name: str | None, source: Readable) -> StagedFile | Refusal:
        """Stage one file from a file object, reading no more than the limits allow."""
        receiver = self._receiver(client_name)
        try:
            while chunk := source.read(min(CHUNK_BYTES, receiver.room + 1)):
                receiver.write(chunk)
        except BaseException:
            receiver.abandon()
            raise
        return self._finish(receiver)

    def add_chunks(self, client_name: str | None, chunks: Iterable[bytes]) -> StagedFile | Refusal:
        """Stage one file from chunks; none is pulled after the one that passes a limit."""
        receiver = self._receiver(client_name)
        try:
            for chunk in chunks:
                receiver.write(chunk)
        except BaseException:
            receiver.abandon()
            raise
        return self._finish(receiver)

    async def add_async(
        self, client_name: str | None, chunks: AsyncIterable[bytes]
    ) -> StagedFile | Refusal:
        """Stage one file from an async stream of chunks (a request body, an UploadFile)."""
        receiver = self._receiver(client_name)
        try:
            async for chunk in chunks:
                receiver.write(chunk)
        except BaseException:
            receiver.abandon()
            raise
        return self._finish(receiver)

    def discard(self) -> None:
        """Remove everything staged: the request failed, or its job never ran."""
        shutil.rmtree(self.directory, ignore_errors=True)

    def _receiver(self, client_name: str | None) -> _Receiver:
        count = len(self.staged) + len(self.refused)
        if count >= self.limits.max_files:
            raise TooManyFilesError(
                f"an upload holds at most {self.limits.max_files} files; send the rest in "
                "another request"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        name = safe_file_name(client_name or "")
        return _Receiver(self, name, self.directory / f".part-{count}")

    def _finish(self, receiver: _Receiver) -> StagedFile | Refusal:
        outcome = receiver.close()
        if isinstance(outcome, Refusal):
            self.refused.append(outcome)
        else:
            self.staged.append(outcome)
        return outcome


class _Receiver:
    """One file being written to the staging folder, counted against the limits as it comes."""

    def __init__(self, batch: UploadBatch, name: str, part: Path) -> None:
        self._batch = batch
        self._name = name
        self._part = part
        self._handle = part.open("wb")
        self._hash = hashlib.sha256()
        self._sniffer = _Sniffer()
        self._size = 0

    @property
    def room(self) -> int:
        """How many more bytes this file may have before a limit is passed."""
        limits = self._batch.limits
        return min(
            limits.max_file_bytes - self._size,
            limits.max_total_bytes - self._batch.total_bytes,
        )

    def write(self, chunk: bytes) -> None:
        limits = self._batch.limits
        if len(chunk) > self.room:
            if self._size + len(chunk) > limits.max_file_bytes:
                raise UploadTooLargeError(
                    f"{self._name} is larger than the limit of {_size(limits.max_file_bytes)} "
                    "per file"
                )
            raise UploadTooLargeError(
                f"the files of this upload add up to more than the limit of "
                f"{_size(limits.max_total_bytes)} per request; send them in several requests"
            )
        self._handle.write(chunk)
        self._hash.update(chunk)
        self._sniffer.feed(chunk)
        self._size += len(chunk)
        self._batch.total_bytes += len(chunk)

    def abandon(self) -> None:
        self._handle.close()
        self._part.unlink(missing_ok=True)

    def close(self) -> StagedFile | Refusal:
        self._handle.close()
        sniffed = self._sniffer.result(self._part)
        name = document_name(self._name, sniffed)
        if isinstance(name, str) and any(staged.name == name for staged in self._batch.staged):
            # The second file would replace the first before either is ingested.
            name = Refusal(
                name, f"another file named {name} is in this upload; rename one to upload both"
            )
        if isinstance(name, Refusal) or sniffed.kind is None:
            self._part.unlink()
            return name if isinstance(name, Refusal) else Refusal(self._name, sniffed.looks_like)
        path = self._part.replace(self._batch.directory / name)
        return StagedFile(name, sniffed.kind, self._size, self._hash.hexdigest(), path)


def _size(count: int) -> str:
    return f"{count / MiB:g} MiB" if count >= MiB else f"{count} bytes"


_IN_USE = ".in-use"
"""Locked shared by jobs between keeping files and writing the version that names them."""


class Originals:
    """Uploaded files as they came, under `directory`, by content: `<sha256>/<file name>`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """Keep `collect_garbage` (anyone's: replicas share the folder) from removing files
        kept in this block before the index names them; several holders may share it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / _IN_USE).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def keep(self, path: Path, sha256: str) -> Path:
        """Move a staged file in (durably, before the index can name it); its name stays.

        The same bytes already kept under that name stay as they were, time included: the
        file's time is when the collection first kept them, which the document list shows."""
        target = self._path(path.name, sha256)
        if target is None:
            raise ValueError(f"not a staged file name and SHA-256: {path.name!r}, {sha256!r}")
        if target.is_file():
            path.unlink()
            return target
        created = not target.parent.exists()
        target.parent.mkdir(parents=True, exist_ok=True)
        path.replace(target)
        os.utime(target)  # kept now; the staged file's time is when its upload was written
        fsync_file(target)
        fsync_dir(target.parent)
        if created:
            fsync_dir(self.directory)
        return target

    def copy_in(self, source: Path, file_name: str, sha256: str) -> Path | None:
        """Copy a file `chancery ingest` read in, durably, as `keep` moves an upload in; None
        when its bytes no longer hash to `sha256` (it changed after it was read). The same
        bytes already kept under that name stay as they were."""
        target = self._path(file_name, sha256)
        if target is None:
            raise ValueError(f"{file_name!r} cannot name a kept file (see safe_file_name)")
        if target.is_file():
            return target
        created = not target.parent.exists()
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".tmp-{secrets.token_hex(8)}")
        digest = hashlib.sha256()
        try:
            with source.open("rb") as reading, temporary.open("wb") as writing:
                while chunk := reading.read(CHUNK_BYTES):
                    digest.update(chunk)
                    writing.write(chunk)
                writing.flush()
                os.fsync(writing.fileno())
            if digest.hexdigest() != sha256:
                return None
            temporary.replace(target)
        finally:
            temporary.unlink(missing_ok=True)
        fsync_dir(target.parent)
        if created:
            fsync_dir(self.directory)
        return target

    def find(self, file_name: str, sha256: str) -> Path | None:
        """The original of a document as the index manifest names it, if it is kept."""
        path = self._path(file_name, sha256)
        return path if path is not None and path.is_file() else None

    def collect_garbage(self, referenced: Callable[[], Set[tuple[str, str]]]) -> int:
        """Remove every original whose (sha256, file name) is not in `referenced()`; how many.

        Nothing is removed while anyone holds `in_use`: a job of another replica may have kept
        files that the version it is about to write names. The next collection removes them.
        """
        if not self.directory.is_dir():
            return 0
        with (self.directory / _IN_USE).open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0
            try:
                # Read under the lock: every file kept before it is named by a version by now.
                return self._remove_unreferenced(referenced())
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _remove_unreferenced(self, referenced: Set[tuple[str, str]]) -> int:
        removed = 0
        for folder in sorted(self.directory.iterdir()):
            if not folder.is_dir() or not _SHA256.fullmatch(folder.name):
                continue
            for original in sorted(folder.iterdir()):
                if (folder.name, original.name) not in referenced:
                    original.unlink(missing_ok=True)
                    removed += 1
            if not any(folder.iterdir()):
                folder.rmdir()
        return removed

    def _path(self, file_name: str, sha256: str) -> Path | None:
        if not _SHA256.fullmatch(sha256) or safe_file_name(file_name) != file_name:
            return None
        return self.directory / sha256 / file_name


def referenced_originals(index_dir: Path) -> set[tuple[str, str]]:
    """(sha256, file name) of every document of every version in the index folder.

    The version before the current one is kept by the index writer for readers still on it, so
    its originals stay too. An unreadable manifest raises StoreError: better keep every file
    than remove one a version still names.
    """
    referenced: set[tuple[str, str]] = set()
    for version in sorted(index_dir.glob("v-*")):
        if version.is_dir():
            for document in read_manifest(version).documents:
                referenced.add((document.sha256, document.file_name))
    return referenced
