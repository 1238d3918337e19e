"""Bad files fail with a reason a person understands, and never stop the other files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.chunking import ChunkingConfig, chunk_document
from ingest.loaders import load_document
from ingest.models import FileStatus
from ingest.pipeline import ingest_files
from ingest.raw import LoadError
from tests.conftest import WhitespaceTokenizer
from tests.pdf_factory import encrypt, write_pdf

GOOD_TEXT = "Northland signed the energy treaty in 2021.\nIt covers gas storage."


@pytest.fixture
def good_pdf(tmp_path: Path) -> Path:
    return write_pdf(tmp_path / "good.pdf", [GOOD_TEXT, "Second page text stands here."])


def _failure(path: Path) -> str:
    with pytest.raises(LoadError) as caught:
        load_document(path)
    return str(caught.value)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.pdf").write_bytes(b"")
    assert _failure(tmp_path / "empty.pdf") == "the file is empty"


def test_non_pdf_named_pdf(tmp_path: Path) -> None:
    (tmp_path / "notes.pdf").write_text("just some notes, not a PDF")
    assert "not a PDF" in _failure(tmp_path / "notes.pdf")


@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_truncated_pdf(tmp_path: Path, good_pdf: Path, keep: float) -> None:
    data = good_pdf.read_bytes()
    (tmp_path / "cut.pdf").write_bytes(data[: int(len(data) * keep)])
    reason = _failure(tmp_path / "cut.pdf")
    assert "truncated" in reason


def test_pdf_with_unknown_password(tmp_path: Path, good_pdf: Path) -> None:
    locked = encrypt(good_pdf, tmp_path / "locked.pdf", user_password="s3cret")
    assert "password-protected" in _failure(locked)


def test_pdf_encrypted_with_an_empty_password_opens(tmp_path: Path, good_pdf: Path) -> None:
    opened = load_document(encrypt(good_pdf, tmp_path / "open.pdf", user_password=""))
    assert "energy treaty in 2021" in opened.document.pages[0].text


def test_page_without_text_is_reported_by_number(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "partly-scanned.pdf", ["Page one text.", None, "Page three.", None])
    loaded = load_document(path)
    assert len(loaded.document.pages) == 4
    assert loaded.warnings and "page(s) 2, 4" in loaded.warnings[0]


def test_pdf_without_any_text_fails_and_says_ocr(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "scan.pdf", [None, None])
    reason = _failure(path)
    assert "none of its 2 page(s)" in reason and "OCR" in reason


def test_unsupported_extension(tmp_path: Path) -> None:
    (tmp_path / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    assert "unsupported file type '.xlsx'" in _failure(tmp_path / "sheet.xlsx")


def test_binary_file_named_txt(tmp_path: Path) -> None:
    (tmp_path / "blob.txt").write_bytes(b"\x00\x01\x02binary")
    assert "binary" in _failure(tmp_path / "blob.txt")


def test_broken_docx(tmp_path: Path) -> None:
    (tmp_path / "memo.docx").write_bytes(b"PK not really a zip")
    assert "not a readable Word document" in _failure(tmp_path / "memo.docx")


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("word " * 1000)
    with pytest.raises(LoadError, match="over the 0 MiB limit"):
        load_document(tmp_path / "big.txt", max_bytes=100)


def test_a_bad_file_never_stops_the_others(tmp_path: Path, good_pdf: Path) -> None:
    (tmp_path / "empty.pdf").write_bytes(b"")
    (tmp_path / "notes.pdf").write_text("not a pdf")
    encrypt(good_pdf, tmp_path / "locked.pdf", user_password="pw")
    (tmp_path / "readme.md").write_text("# Readme\n\nSome words.")
    (tmp_path / ".hidden.txt").write_text("ignored")
    tokenizer = WhitespaceTokenizer()
    config = ChunkingConfig(size=50, overlap=5, max_tokens=60)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "readme.md").write_text("# Another readme\n\nSame name, other folder.")
    heard = []
    result = ingest_files(
        [tmp_path], lambda d: chunk_document(d, tokenizer, config), on_file=heard.append
    )
    assert heard == result.report.files
    status = {r.path.relative_to(tmp_path).as_posix(): r.status for r in result.report.files}
    assert status == {
        "empty.pdf": FileStatus.FAILED,
        "good.pdf": FileStatus.OK,
        "locked.pdf": FileStatus.FAILED,
        "notes.pdf": FileStatus.FAILED,
        "readme.md": FileStatus.OK,
        "sub/readme.md": FileStatus.FAILED,
    }
    assert "another file named readme.md" in result.report.failed[-1].reason
    good = next(r for r in result.report.ok if r.path.name == "good.pdf")
    chunks = dict((d.file_name, c) for d, c in result.documents)["good.pdf"]
    assert good.pages == 2 and good.chunks == len(chunks) > 0
    assert [d.file_name for d, _ in result.documents] == ["good.pdf", "readme.md"]
    assert all(r.reason for r in result.report.failed)
