"""Uploads: types sniffed from real bytes, names made one safe file name, limits while reading."""

from __future__ import annotations

import asyncio
import codecs
import hashlib
import io
import random
import unicodedata
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path, PurePosixPath

import docx
import pypdfium2 as pdfium
import pytest
from hypothesis import given
from hypothesis import strategies as st

from index.store import ChunkingParameters
from index.update import update_index
from ingest.chunking import ChunkingConfig, chunk_document
from ingest.ids import make_doc_id
from ingest.loaders import LOADERS
from ingest.models import Chunk, Document
from ingest.pipeline import ingest_files
from service.uploads import (
    FALLBACK_NAME,
    MAX_NAME_BYTES,
    SUFFIX_KINDS,
    Kind,
    Originals,
    Refusal,
    StagedFile,
    TooManyFilesError,
    UploadBatch,
    UploadLimits,
    UploadTooLargeError,
    document_name,
    referenced_originals,
    safe_file_name,
    sniff_file,
)
from tests.conftest import WhitespaceTokenizer
from tests.fakes import FakeEmbedder
from tests.pdf_factory import write_pdf

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"


def pdf_bytes(tmp_path: Path, pages: list[str | None] | None = None) -> bytes:
    return write_pdf(tmp_path / "made.pdf", pages or ["Gas storage must be full."]).read_bytes()


def docx_bytes() -> bytes:
    document = docx.Document()
    document.add_heading("Energy", level=1)
    document.add_paragraph("Gas storage must be full before winter.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def zip_bytes(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def garbage() -> bytes:
    return random.Random(7).randbytes(4096)


def sniff(tmp_path: Path, data: bytes) -> tuple[Kind | None, str]:
    path = tmp_path / "sniffed"
    path.write_bytes(data)
    sniffed = sniff_file(path)
    return sniffed.kind, sniffed.looks_like


# Sniffing real bytes


def test_a_real_pdf_is_a_pdf(tmp_path: Path) -> None:
    assert sniff(tmp_path, pdf_bytes(tmp_path)) == (Kind.PDF, "a PDF")


def test_a_pdf_with_bytes_before_its_header_is_a_pdf(tmp_path: Path) -> None:
    assert sniff(tmp_path, b"\x00\x01junk\n" + pdf_bytes(tmp_path))[0] is Kind.PDF


def test_a_text_that_mentions_the_pdf_header_is_text(tmp_path: Path) -> None:
    assert sniff(tmp_path, b"A PDF starts with %PDF-1.7 and a comment.\n")[0] is Kind.TEXT


def test_a_real_docx_is_a_word_document(tmp_path: Path) -> None:
    assert sniff(tmp_path, docx_bytes())[0] is Kind.DOCX


def test_a_zip_that_is_not_a_word_document_is_a_zip_archive(tmp_path: Path) -> None:
    assert sniff(tmp_path, zip_bytes({"notes.txt": "hello"})) == (None, "a ZIP archive")


def test_a_spreadsheet_is_not_a_word_document(tmp_path: Path) -> None:
    data = zip_bytes({"[Content_Types].xml": "<Types/>", "xl/workbook.xml": "<workbook/>"})
    kind, looks_like = sniff(tmp_path, data)
    assert kind is None
    assert "XLSX" in looks_like


def test_a_truncated_zip_is_damaged(tmp_path: Path) -> None:
    assert sniff(tmp_path, docx_bytes()[:200]) == (None, "a damaged ZIP archive")


@pytest.mark.parametrize(
    "data",
    [
        b"<!DOCTYPE html><html><body><p>Hi</p></body></html>",
        b"\n  <html lang='en'><p>Hi</p></html>",
        codecs.BOM_UTF8 + b"\n  <p>Hi</p>",
        b"<!-- saved page -->\n<div>Hi</div>",
    ],
)
def test_html_is_html(tmp_path: Path, data: bytes) -> None:
    assert sniff(tmp_path, data)[0] is Kind.HTML


@pytest.mark.parametrize(
    "data",
    [
        b"Gas storage must be full before winter.\n",
        "# Стратегија\n\nТекст.\f Page two.\n".encode(),
        b"<not a tag we sniff> but text all the same\n",
        codecs.BOM_UTF8 + b"with a byte order mark",
    ],
)
def test_utf8_text_is_text(tmp_path: Path, data: bytes) -> None:
    assert sniff(tmp_path, data) == (Kind.TEXT, "plain text")


def test_windows_1252_text_is_text_as_the_command_line_reads_it(tmp_path: Path) -> None:
    kind, looks_like = sniff(tmp_path, "Café “quoted” – dash\r\n".encode("cp1252"))
    assert kind is Kind.TEXT
    assert "not UTF-8" in looks_like


def test_text_split_across_chunks_at_a_multibyte_character_is_still_utf8(tmp_path: Path) -> None:
    data = ("é" * 700_000).encode()  # 1.4 MB: the 1 MiB chunk boundary falls inside a character
    assert sniff(tmp_path, data) == (Kind.TEXT, "plain text")


@pytest.mark.parametrize(
    ("data", "wide"),
    [
        ("Gas storage must be full.".encode("utf-16"), "UTF-16"),
        ("Gas storage must be full.".encode("utf-16-le"), "UTF-16"),
        ("Gas storage must be full.".encode("utf-16-be"), "UTF-16"),
        ("Gas storage must be full.".encode("utf-32"), "UTF-32"),
    ],
)
def test_utf16_and_utf32_text_are_refused_with_advice(
    tmp_path: Path, data: bytes, wide: str
) -> None:
    path = tmp_path / "wide.txt"
    path.write_bytes(data)
    sniffed = sniff_file(path)
    assert sniffed.kind is None
    assert sniffed.looks_like == f"{wide} text"
    refusal = document_name("wide.txt", sniffed)
    assert isinstance(refusal, Refusal)
    assert "save it as UTF-8" in refusal.reason


@pytest.mark.parametrize(
    ("data", "looks_like"),
    [
        (PNG, "a PNG image"),
        (garbage(), "binary data of no type Chancery knows"),
        (b"text with a NUL\x00 inside", "binary data of no type Chancery knows"),
        (b"\x1b[31mred\x1b[0m terminal output", "binary data of no type Chancery knows"),
        (b"", "an empty file"),
    ],
)
def test_other_bytes_are_not_readable(tmp_path: Path, data: bytes, looks_like: str) -> None:
    assert sniff(tmp_path, data) == (None, looks_like)


# The name's suffix against the bytes


def sniffed_as(tmp_path: Path, data: bytes) -> object:
    path = tmp_path / "sniffed"
    path.write_bytes(data)
    return sniff_file(path)


def test_every_suffix_a_loader_reads_is_covered() -> None:
    assert set(SUFFIX_KINDS) == set(LOADERS)


def test_a_suffix_that_fits_the_bytes_keeps_the_name(tmp_path: Path) -> None:
    cases = {
        "report.pdf": pdf_bytes(tmp_path),
        "REPORT.PDF": pdf_bytes(tmp_path),
        "brief.docx": docx_bytes(),
        "notes.md": b"# Notes\n",
        "notes.txt": b"# Notes\n",
        "page.html": b"<html><p>Hi</p></html>",
        "page.htm": b"<html><p>Hi</p></html>",
        "page-source.txt": b"<html><p>Hi</p></html>",
        "fragment.html": b"Hello <em>there</em>",
    }
    for name, data in cases.items():
        path = tmp_path / "x"
        path.write_bytes(data)
        assert document_name(name, sniff_file(path)) == name


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("x.pdf", zip_bytes({"a.txt": "a"}), "it is not a PDF (it looks like a ZIP archive)"),
        ("x.pdf", b"plain words", "it is not a PDF (it looks like plain text)"),
        ("x.pdf", PNG, "it is not a PDF (it looks like a PNG image)"),
        ("x.docx", zip_bytes({"a.txt": "a"}), "it is not a Word document (it looks like a ZIP"),
        ("x.docx", b"%PDF-1.4\n%\xe2\xe3\n", "it is not a Word document (it looks like a PDF)"),
        ("x.txt", b"%PDF-1.4\n%\xe2\xe3\n", "it is not text (it looks like a PDF)"),
        ("x.md", docx_bytes(), "it is not text (it looks like a Word document)"),
        ("x.txt", b"", "the file is empty"),
        ("x.exe", PNG, "it is a type Chancery does not read (it looks like a PNG image)"),
        ("data.csv", b"a,b\n1,2\n", "unsupported file type '.csv'"),
    ],
)
def test_a_suffix_that_does_not_fit_the_bytes_is_refused(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    path = tmp_path / "x"
    path.write_bytes(data)
    refusal = document_name(name, sniff_file(path))
    assert isinstance(refusal, Refusal)
    assert refusal.name == name
    assert refusal.reason.startswith(reason)
    assert str(refusal).startswith(f"{name}: ")


def test_a_name_without_a_suffix_it_reads_gets_the_sniffed_one(tmp_path: Path) -> None:
    cases = {
        ("scan", pdf_bytes(tmp_path)): "scan.pdf",
        ("Strategy v1.2", pdf_bytes(tmp_path)): "Strategy v1.2.pdf",
        ("brief", docx_bytes()): "brief.docx",
        ("README", b"Read me.\n"): "README.txt",
        ("saved-page", b"<!doctype html><p>Hi</p>"): "saved-page.html",
    }
    for (name, data), expected in cases.items():
        path = tmp_path / "x"
        path.write_bytes(data)
        assert document_name(name, sniff_file(path)) == expected


def test_an_appended_suffix_still_fits_the_name_limit(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(pdf_bytes(tmp_path))
    name = document_name("a" * MAX_NAME_BYTES, sniff_file(path))
    assert isinstance(name, str)
    assert name.endswith(".pdf")
    assert len(name.encode()) <= MAX_NAME_BYTES


# Names


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("/abs/path/report.pdf", "report.pdf"),
        ("C:\\Users\\me\\Desktop\\report.pdf", "report.pdf"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("dir/", "dir"),
        ("..", FALLBACK_NAME),
        (".", FALLBACK_NAME),
        ("", FALLBACK_NAME),
        ("   ", FALLBACK_NAME),
        ("\x00\x01", FALLBACK_NAME),
        (".env", "env"),
        ("...hidden.pdf", "hidden.pdf"),
        ("-rf.pdf", "rf.pdf"),
        ("a\x00b.pdf", "ab.pdf"),
        ("line\nbreak.pdf", "line break.pdf"),
        ("tabs\t\tand  spaces .pdf", "tabs and spaces .pdf"),
        ("trailing dots...", "trailing dots"),
        ("fdp\u202e.exe", "fdp.exe"),
        ("zero\u200bwidth.pdf", "zerowidth.pdf"),
        ("می\u200cخواهم.pdf", "می\u200cخواهم.pdf"),
        ("Ünïcode.pdf", "Ünïcode.pdf"),
        ("U\u0308ni\u0308code.pdf", "Ünïcode.pdf"),
        ("Стратегија.md", "Стратегија.md"),
        ("lone\udc80surrogate.txt", "lonesurrogate.txt"),
        ("CON", "CON"),
    ],
)
def test_names_are_made_safe(raw: str, safe: str) -> None:
    assert safe_file_name(raw) == safe


def test_a_long_name_is_cut_keeping_its_suffix() -> None:
    name = safe_file_name("ж" * 300 + ".docx")
    assert name.endswith(".docx")
    assert len(name.encode()) <= MAX_NAME_BYTES
    assert name.startswith("жжж")


def test_a_long_name_is_cut_on_a_character_boundary() -> None:
    name = safe_file_name("a" + "😀" * 100 + ".pdf")
    assert len(name.encode()) <= MAX_NAME_BYTES
    assert name.endswith(".pdf")
    assert "\ufffd" not in name


def assert_one_safe_component(name: str) -> None:
    assert name
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert PurePosixPath(name).name == name
    assert len(PurePosixPath(name).parts) == 1
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert name not in (".", "..")
    assert not name.startswith((".", "-", " "))
    assert not name.endswith((".", " "))
    assert unicodedata.is_normalized("NFC", name)
    assert not any(unicodedata.category(char) in ("Cc", "Cs") for char in name)


ANY_CHARACTER = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),  # lone surrogates, as undecodable bytes arrive
    st.sampled_from(list("/\\. -\u200d\u0301\u202e")),
)


@given(st.text(alphabet=ANY_CHARACTER, max_size=400))
def test_any_name_becomes_one_safe_path_component(raw: str) -> None:
    name = safe_file_name(raw)
    assert_one_safe_component(name)
    assert safe_file_name(name) == name


@given(
    st.lists(st.sampled_from(["..", ".", "/", "\\", "\x00", "a", "é", " ", "\n", "-"]), max_size=60)
)
def test_names_made_of_path_syntax_become_one_safe_component(parts: list[str]) -> None:
    assert_one_safe_component(safe_file_name("".join(parts)))


# Limits while reading


class CountingChunks:
    """Chunks of one byte value, counting how many were pulled."""

    def __init__(self, chunk: bytes, count: int) -> None:
        self.chunk = chunk
        self.count = count
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(self.count):
            self.pulled += 1
            yield self.chunk

    async def stream(self) -> AsyncIterator[bytes]:
        for chunk in self:
            yield chunk


def test_a_stream_over_the_file_limit_stops_at_the_chunk_that_passes_it(tmp_path: Path) -> None:
    batch = UploadBatch(tmp_path / "up", UploadLimits(max_file_bytes=1000))
    chunks = CountingChunks(b"a" * 100, 1_000_000)
    with pytest.raises(UploadTooLargeError, match=r"big\.txt is larger than the limit") as caught:
        batch.add_chunks("big.txt", chunks)
    assert caught.value.status == 413
    assert chunks.pulled == 11
    assert list((tmp_path / "up").iterdir()) == []


def test_an_async_stream_over_the_file_limit_stops_early(tmp_path: Path) -> None:
    batch = UploadBatch(tmp_path / "up", UploadLimits(max_file_bytes=1000))
    chunks = CountingChunks(b"a" * 100, 1_000_000)
    with pytest.raises(UploadTooLargeError):
        asyncio.run(batch.add_async("big.txt", chunks.stream()))
    assert chunks.pulled == 11
    assert list((tmp_path / "up").iterdir()) == []


class CountingReader(io.RawIOBase):
    """An endless file that remembers the most it was asked for at once and in all."""

    def __init__(self) -> None:
        self.largest = 0
        self.total = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        assert size > 0, "an unbounded read would hold the whole upload in memory"
        self.largest = max(self.largest, size)
        self.total += size
        return b"a" * size


def test_a_file_object_is_read_no_further_than_the_limit(tmp_path: Path) -> None:
    batch = UploadBatch(tmp_path / "up", UploadLimits(max_file_bytes=5000))
    reader = CountingReader()
    with pytest.raises(UploadTooLargeError):
        batch.add_file("big.txt", reader)
    assert reader.total == 5001
    assert reader.largest <= 5001


def test_a_file_exactly_at_the_limit_is_accepted(tmp_path: Path) -> None:
    batch = UploadBatch(tmp_path / "up", UploadLimits(max_file_bytes=1000))
    staged = batch.add_file("exact.txt", io.BytesIO(b"a" * 1000))
    assert isinstance(staged, StagedFile)
    assert staged.size == 1000


def test_the_total_limit_counts_every_file_of_the_request(tmp_path: Path) -> None:
    batch = UploadBatch(tmp_path / "up", UploadLimits(max_file_bytes=600, max_total_bytes=1000))
    assert isinstance(batch.add_file("one.txt", io.BytesIO(b"a" * 600)), StagedFile)
    chunks = CountingChunks(b"b" * 100, 100)
    with pytest.raises(UploadTooLargeError, match="add up to more than"):
        batch.add_chunks("two.txt", chunks)
    assert chunks.pulled == 5
    batch.discard()
    assert not (tmp_path / "up").exists()


def test_one_file_too_many_is_refused_before_it_is_read(tmp_path: Path) -> None:
    batch = UploadBatch(tmp_path / "up", UploadLimits(max_files=2))
    batch.add_file("one.txt", io.BytesIO(b"one"))
    batch.add_file("two.png", io.BytesIO(PNG))  # refused files count too
    chunks = CountingChunks(b"c", 10)
    with pytest.raises(TooManyFilesError) as caught:
        batch.add_chunks("three.txt", chunks)
    assert caught.value.status == 413
    assert chunks.pulled == 0


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        UploadLimits(max_files=0)


# Staging


def test_staged_files_carry_their_safe_name_hash_and_kind(tmp_path: Path) -> None:
    data = pdf_bytes(tmp_path)
    batch = UploadBatch(tmp_path / "up")
    staged = batch.add_file("../../Annual Report.pdf", io.BytesIO(data))
    assert isinstance(staged, StagedFile)
    assert staged.name == "Annual Report.pdf"
    assert staged.kind is Kind.PDF
    assert staged.sha256 == hashlib.sha256(data).hexdigest()
    assert staged.path == tmp_path / "up" / "Annual Report.pdf"
    assert staged.path.read_bytes() == data
    assert len(pdfium.PdfDocument(staged.path)) == 1
    assert batch.staged == [staged]


def test_a_refused_file_is_reported_and_leaves_nothing_behind(tmp_path: Path) -> None:
    batch = UploadBatch(tmp_path / "up")
    refusal = batch.add_file("fake.pdf", io.BytesIO(zip_bytes({"a.txt": "a"})))
    assert refusal == Refusal("fake.pdf", "it is not a PDF (it looks like a ZIP archive)")
    assert batch.refused == [refusal]
    assert list((tmp_path / "up").iterdir()) == []


def test_two_files_of_one_name_in_one_upload_keep_the_first(tmp_path: Path) -> None:
    batch = UploadBatch(tmp_path / "up")
    first = batch.add_file("dir1/notes.txt", io.BytesIO(b"first"))
    second = batch.add_file("dir2/notes.txt", io.BytesIO(b"second"))
    assert isinstance(first, StagedFile)
    assert isinstance(second, Refusal)
    assert "another file named notes.txt" in second.reason
    assert first.path.read_bytes() == b"first"


def test_an_async_upload_is_staged_like_a_file(tmp_path: Path) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"# Notes\n"
        yield b"Gas storage.\n"

    batch = UploadBatch(tmp_path / "up")
    staged = asyncio.run(batch.add_async("notes.md", body()))
    assert isinstance(staged, StagedFile)
    assert staged.path.read_bytes() == b"# Notes\nGas storage.\n"


def test_a_docx_staged_opens_in_python_docx(tmp_path: Path) -> None:
    batch = UploadBatch(tmp_path / "up")
    staged = batch.add_file("brief", io.BytesIO(docx_bytes()))
    assert isinstance(staged, StagedFile)
    assert staged.name == "brief.docx"
    assert "Gas storage" in docx.Document(str(staged.path)).paragraphs[1].text


# Originals


def stage(tmp_path: Path, name: str, data: bytes) -> StagedFile:
    staged = UploadBatch(tmp_path / f"up-{hashlib.sha256(data).hexdigest()[:8]}").add_file(
        name, io.BytesIO(data)
    )
    assert isinstance(staged, StagedFile)
    return staged


def test_originals_are_kept_by_content_and_found_by_name_and_hash(tmp_path: Path) -> None:
    originals = Originals(tmp_path / "originals")
    staged = stage(tmp_path, "report.pdf", pdf_bytes(tmp_path))
    kept = originals.keep(staged.path, staged.sha256)
    assert kept == tmp_path / "originals" / staged.sha256 / "report.pdf"
    assert not staged.path.exists()
    assert originals.find("report.pdf", staged.sha256) == kept
    assert originals.find("report.pdf", "0" * 64) is None
    assert originals.find("../report.pdf", staged.sha256) is None
    assert originals.find("report.pdf", "../" + staged.sha256[3:]) is None


def test_a_new_upload_of_a_name_sits_beside_the_old_until_collected(tmp_path: Path) -> None:
    originals = Originals(tmp_path / "originals")
    old = stage(tmp_path, "report.txt", b"old words")
    new = stage(tmp_path, "report.txt", b"new words")
    originals.keep(old.path, old.sha256)
    originals.keep(new.path, new.sha256)
    assert originals.find("report.txt", old.sha256) is not None
    assert originals.collect_garbage(lambda: {(new.sha256, "report.txt")}) == 1
    assert originals.find("report.txt", old.sha256) is None
    assert originals.find("report.txt", new.sha256) is not None
    assert not (tmp_path / "originals" / old.sha256).exists()


def test_the_index_manifest_maps_each_document_to_its_original(tmp_path: Path) -> None:
    """The whole path of an upload: stage, keep, ingest the kept files, then collect."""
    index_dir, originals = tmp_path / "index", Originals(tmp_path / "originals")
    embedder = FakeEmbedder()
    config = ChunkingConfig(size=40, overlap=8, max_tokens=60)
    chunking = ChunkingParameters(config.size, config.overlap, config.max_tokens)

    def chunker(document: Document) -> list[Chunk]:
        return chunk_document(document, WhitespaceTokenizer(), config)

    def ingest(files: list[StagedFile]) -> None:
        kept = [originals.keep(f.path, f.sha256) for f in files]
        result = ingest_files(kept, chunker)
        assert not result.report.failed
        update_index(index_dir, result.documents, embedder, chunking)
        originals.collect_garbage(lambda: referenced_originals(index_dir))

    first = stage(tmp_path, "Energy Brief.md", b"# Energy\n\nGas storage must be full.\n")
    ingest([first, stage(tmp_path, "scan", pdf_bytes(tmp_path, ["Border crossings."]))])
    referenced = referenced_originals(index_dir)
    assert {name for _, name in referenced} == {"Energy Brief.md", "scan.pdf"}
    for sha256, name in referenced:
        assert originals.find(name, sha256) is not None

    second = stage(tmp_path, "Energy Brief.md", b"# Energy\n\nGas storage is full.\n")
    ingest([second])
    third = stage(tmp_path, "Energy Brief.md", b"# Energy\n\nGas storage is empty.\n")
    ingest([third])
    # The version before the current one may still be serving readers: its original stays.
    assert originals.find("Energy Brief.md", first.sha256) is None
    assert originals.find("Energy Brief.md", second.sha256) is not None
    assert originals.find("Energy Brief.md", third.sha256) is not None
    assert make_doc_id("Energy Brief.md").startswith("energy-brief~")
