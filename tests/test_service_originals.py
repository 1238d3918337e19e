"""Originals kept for the page viewer: by uploads and by `chancery ingest --collection`, never for a
bare index folder; what the document list reads from them."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from ingest.loaders import load_document
from service.originals import document_format, keep_ingested, kept_original
from service.uploads import Originals
from tests.pdf_factory import write_pdf
from tests.test_cli_collections import chancery


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_same_bytes_kept_again_keep_their_first_time(tmp_path: Path) -> None:
    originals = Originals(tmp_path / "originals")
    first = tmp_path / "staged-1" / "report.txt"
    first.parent.mkdir()
    first.write_text("the harbour opened in 1987")
    digest = sha256(first)
    kept = originals.keep(first, digest)
    os.utime(kept, (1_000_000, 1_000_000))
    again = tmp_path / "staged-2" / "report.txt"
    again.parent.mkdir()
    again.write_text("the harbour opened in 1987")
    assert originals.keep(again, digest) == kept
    assert not again.exists() and kept.stat().st_mtime == 1_000_000
    found = kept_original(originals, "report.txt", digest)
    assert found is not None and found.size == 26 and found.kept_at.timestamp() == 1_000_000


def test_an_upload_is_kept_at_the_time_it_is_kept(tmp_path: Path) -> None:
    staged = tmp_path / "staged" / "report.txt"
    staged.parent.mkdir()
    staged.write_text("text")
    os.utime(staged, (1_000_000, 1_000_000))  # written long before its job ran
    kept = Originals(tmp_path / "originals").keep(staged, sha256(staged))
    assert kept.stat().st_mtime > 1_000_000


def test_a_file_read_by_ingest_is_copied_in_whole_or_not_at_all(tmp_path: Path) -> None:
    originals = Originals(tmp_path / "originals")
    source = tmp_path / "brief.md"
    source.write_text("# Brief\n\nGas storage is full.")
    digest = sha256(source)
    kept = originals.copy_in(source, "brief.md", digest)
    assert kept == tmp_path / "originals" / digest / "brief.md"
    assert kept.read_bytes() == source.read_bytes() and source.exists()
    assert originals.copy_in(source, "brief.md", digest) == kept
    source.write_text("changed since it was read")
    assert originals.copy_in(source, "brief.md", "0" * 64) is None
    assert list((tmp_path / "originals" / ("0" * 64)).glob("*")) == []
    with pytest.raises(ValueError, match="cannot name a kept file"):
        originals.copy_in(source, "../brief.md", digest)


def test_keeping_what_ingest_read_says_why_a_file_was_not_kept(tmp_path: Path) -> None:
    originals = Originals(tmp_path / "originals")
    good = write_pdf(tmp_path / "report.pdf", ["The harbour opened in 1987."])
    hidden = write_pdf(tmp_path / "-odd.pdf", ["A name the originals cannot take."])
    documents = [(path, load_document(path).document) for path in (good, hidden)]
    notes = keep_ingested(originals, documents)
    assert originals.find("report.pdf", sha256(good)) is not None
    assert len(notes) == 1 and "-odd.pdf: the original is not kept" in notes[0]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.pdf", "pdf"),
        ("a.PDF", "pdf"),
        ("a.txt", "txt"),
        ("a.text", "txt"),
        ("a.md", "md"),
        ("a.markdown", "md"),
        ("a.htm", "html"),
        ("a.html", "html"),
        ("a.docx", "docx"),
        ("a.csv", None),
    ],
)
def test_the_format_is_what_the_file_was_read_as(name: str, kind: str | None) -> None:
    assert document_format(name) == kind


def test_ingest_into_a_collection_keeps_originals_and_into_a_folder_does_not(
    tmp_path: Path,
) -> None:
    """`make demo` ingests with --collection: its PDFs must have page images when served."""
    data = tmp_path / "data"
    report = write_pdf(tmp_path / "report.pdf", ["The harbour of Port Veltmark opened in 1987."])
    into_collection = chancery(data, "ingest", str(report), "--collection", "default")
    assert into_collection.returncode == 0, into_collection.stderr
    kept = data / "collections" / "default" / "originals" / sha256(report) / "report.pdf"
    assert kept.read_bytes() == report.read_bytes()

    folder = tmp_path / "bare"
    into_folder = chancery(data, "ingest", str(report), "--index", str(folder))
    assert into_folder.returncode == 0, into_folder.stderr
    assert (folder / "current").exists() and not (folder / "originals").exists()
    assert list((data / "collections" / "default" / "originals").rglob("*.pdf")) == [kept]
