"""Document ids: two file names never share one, in any script; old indexes stay safe."""

from __future__ import annotations

import dataclasses
import os
import re
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from index.store import (
    ChunkingParameters,
    DocumentEntry,
    current_version,
    load_index,
    write_version,
    writer_lock,
)
from index.update import (
    DocumentIdConflictError,
    LegacyDocumentIdsError,
    UpdateResult,
    update_index,
)
from ingest.chunking import ChunkingConfig, chunk_document
from ingest.ids import make_doc_id, readable_name
from ingest.loaders import load_bytes
from ingest.models import Chunk, Document, FileStatus
from ingest.pipeline import IngestResult, ingest_files
from ingest.sentences import sentence_spans
from service.build import build_app
from service.settings import Settings
from tests.conftest import WhitespaceTokenizer
from tests.fakes import FakeEmbedder
from tests.pdf_factory import write_pdf

CONFIG = ChunkingConfig(size=40, overlap=8, max_tokens=60)
CHUNKING = ChunkingParameters(CONFIG.size, CONFIG.overlap, CONFIG.max_tokens)
NFC_NAME = unicodedata.normalize("NFC", "Strategija-Š.md")
NFD_NAME = unicodedata.normalize("NFD", "Strategija-Š.md")
NAMES = (
    "Стратегија.md",
    "Одбрана.md",
    "中国.pdf",
    "Report 2024.pdf",
    "report-2024.pdf",
    "Plan.md",
    "plan.md",
    "a b.md",
    "a  b.md",
    NFC_NAME,
    NFD_NAME,
    "strategija-š.md",
    unicodedata.normalize("NFD", "strategija-š.md"),
    "Strategjia e Sigurisë.md",
)
URL_UNSAFE = re.compile(r"[/?#%\\\s]")


def _chunk(document: Document) -> list[Chunk]:
    return chunk_document(document, WhitespaceTokenizer(), CONFIG)


def _marker(number: int) -> str:
    """A word only file `number` holds, so a page proves which file it came from."""
    return f"marker{number:02d}"


def _write(folder: Path, number: int, name: str) -> Path:
    path = folder / name
    text = f"File {_marker(number)} of the test. It names the ministry plan for {number} years."
    if path.suffix == ".pdf":
        return write_pdf(path, [text])
    path.write_text(text, encoding="utf-8")
    return path


def _ingest(root: Path, paths: Sequence[Path]) -> tuple[IngestResult, UpdateResult]:
    ingested = ingest_files(paths, _chunk)
    return ingested, update_index(root, ingested.documents, FakeEmbedder(), CHUNKING)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """The HTTP app over `tmp_path / "index"`, its lifespan run."""
    app = build_app(Settings(index_dir=tmp_path / "index"), embedder=FakeEmbedder())
    with TestClient(app) as live:
        yield live


def _folder_of(tmp_path: Path, names: Sequence[str]) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for number, name in enumerate(names):
        _write(folder, number, name)
    if len(list(folder.iterdir())) != len(names):
        pytest.skip(
            "this file system folds case or normalization form, so the names cannot coexist"
        )
    return folder


# -- the id scheme ---------------------------------------------------------------------------------


def test_names_that_were_already_clean_keep_their_id() -> None:
    for name in ("report-2024.pdf", "northland-national-security-strategy.pdf", "中国.pdf"):
        assert make_doc_id(name) == name


def test_other_names_keep_a_readable_slug_and_a_hash_of_the_exact_name() -> None:
    # Ids are stored in indexes and cited in links: this pins the scheme.
    assert make_doc_id("Report 2024.pdf") == "report-2024~d2c8d003eb.pdf"
    assert re.fullmatch(r"стратегија~[0-9a-f]{10}\.md", make_doc_id("Стратегија.md"))
    assert re.fullmatch(r"strategjia-e-sigurisë~[0-9a-f]{10}\.md", make_doc_id(NAMES[-1]))
    assert re.fullmatch(r"document~[0-9a-f]{10}\.pdf", make_doc_id("???.pdf"))
    assert make_doc_id(NFC_NAME) != make_doc_id(NFD_NAME)
    assert make_doc_id("strategija-š.md") == "strategija-š.md"


def test_the_test_names_get_distinct_url_safe_ids() -> None:
    ids = [make_doc_id(name) for name in NAMES]
    assert len(set(ids)) == len(NAMES)
    assert not [doc_id for doc_id in ids if URL_UNSAFE.search(doc_id)]


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=12), st.text(min_size=0, max_size=12))
def test_two_different_names_never_share_an_id(first: str, second: str) -> None:
    a, b = make_doc_id(first), make_doc_id(second)
    assert (a == b) == (first == second)
    for doc_id in (a, b):
        assert doc_id and not URL_UNSAFE.search(doc_id) and doc_id not in {".", ".."}
        doc_id.encode("utf-8")  # no lone surrogate


# -- ingesting them --------------------------------------------------------------------------------


def test_every_name_becomes_its_own_document_reachable_over_http(
    tmp_path: Path, client: TestClient
) -> None:
    folder = _folder_of(tmp_path, NAMES)
    ingested, outcome = _ingest(tmp_path / "index", [folder])
    assert not ingested.report.failed, ingested.report.failed
    assert len(outcome.added) == len(set(outcome.added)) == len(NAMES)

    listing = client.get("/v1/documents").json()["documents"]
    assert sorted(d["file_name"] for d in listing) == sorted(NAMES)
    for number, name in enumerate(NAMES):
        doc_id = quote(make_doc_id(name), safe="")
        detail = client.get(f"/v1/documents/{doc_id}")
        assert detail.status_code == 200, detail.text
        assert detail.json()["file_name"] == name
        page = client.get(f"/v1/documents/{doc_id}/pages/1")
        assert page.status_code == 200, page.text
        assert _marker(number) in page.json()["text"] and page.json()["doc"] == name


def test_a_new_version_of_the_same_name_replaces_it(tmp_path: Path) -> None:
    folder = _folder_of(tmp_path, ["Стратегија.md", "plan.md"])
    root = tmp_path / "index"
    _ingest(root, [folder])
    (folder / "Стратегија.md").write_text("A revised strategy, adopted this year.")
    _, outcome = _ingest(root, [folder])
    assert outcome.replaced == [make_doc_id("Стратегија.md")]
    assert outcome.unchanged == ["plan.md"] and not outcome.added
    index = load_index(root, FakeEmbedder().identity, CHUNKING)
    try:
        assert [d.file_name for d in index.documents()] == ["plan.md", "Стратегија.md"]
    finally:
        index.close()


def test_an_id_held_by_another_file_name_is_refused_not_replaced(tmp_path: Path) -> None:
    root = tmp_path / "index"
    original = load_bytes("plan.md", b"The first plan.").document
    update_index(root, [(original, _chunk(original))], FakeEmbedder(), CHUNKING)
    version = current_version(root)
    # Only a hash collision could do this; the guard must hold even then.
    intruder = dataclasses.replace(
        load_bytes("Plan.md", b"Another plan.").document, doc_id="plan.md"
    )
    with pytest.raises(DocumentIdConflictError, match=r"'Plan\.md' and 'plan\.md'.*rename"):
        update_index(root, [(intruder, _chunk(intruder))], FakeEmbedder(), CHUNKING)
    assert current_version(root) == version


def test_a_non_utf8_file_name_ingests_with_a_readable_name(
    tmp_path: Path, client: TestClient
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    raw_names = (b"r\xe9port.txt", b"r\xe8port.txt")
    try:
        for raw in raw_names:
            (folder / os.fsdecode(raw)).write_bytes(b"A report and its annex.")
    except OSError:
        pytest.skip("this file system refuses names that are not valid UTF-8")
    ingested, outcome = _ingest(tmp_path / "index", [folder])
    assert [r.status for r in ingested.report.files] == [FileStatus.OK, FileStatus.OK]
    assert all("not valid UTF-8" in r.warnings[-1] for r in ingested.report.files)
    assert len(outcome.added) == 2

    listing = client.get("/v1/documents").json()["documents"]
    assert [d["file_name"] for d in listing] == ["r\ufffdport.txt"] * 2
    for document in listing:
        detail = client.get(f"/v1/documents/{quote(document['doc_id'], safe='')}/pages/1")
        assert detail.status_code == 200 and "annex" in detail.json()["text"]
    assert client.get("/v1/index").status_code == 200


def test_a_readable_name_replaces_only_undecodable_bytes() -> None:
    assert readable_name(os.fsdecode(b"r\xe9port.txt")) == "r\ufffdport.txt"
    assert readable_name("Одбрана.md") == "Одбрана.md"


# -- indexes built with the old ids ----------------------------------------------------------------


def _write_legacy_index(root: Path) -> Document:
    """An index as older Chancery wrote it: `Report 2024.txt` under the id `report-2024.txt`."""
    loaded = load_bytes("Report 2024.txt", b"The annual report of the ministry for 2024.")
    document = dataclasses.replace(loaded.document, doc_id="report-2024.txt")
    chunks = _chunk(document)
    spans = [sentence_spans(chunk.text) for chunk in chunks]
    embedder = FakeEmbedder()
    vectors, sentence_vectors = embedder.embed_spans([c.text for c in chunks], spans)
    sentences = tuple((i, start, end) for i, own in enumerate(spans) for start, end in own)
    entry = DocumentEntry(document, tuple(chunks), vectors, sentences, sentence_vectors)
    with writer_lock(root):
        write_version(root, [entry], embedder.identity, CHUNKING)
    return document


def test_an_index_with_old_ids_is_refused_for_adding_but_still_served(
    tmp_path: Path, client: TestClient
) -> None:
    root = tmp_path / "index"
    _write_legacy_index(root)
    version = current_version(root)
    newcomer = load_bytes("Report 2024.txt", b"A revised annual report.").document
    with pytest.raises(LegacyDocumentIdsError, match="older document ids") as refused:
        update_index(root, [(newcomer, _chunk(newcomer))], FakeEmbedder(), CHUNKING)
    assert f"chancery ingest --rebuild FILES --index {root}" in str(refused.value)
    assert current_version(root) == version

    assert client.get("/v1/documents/report-2024.txt/pages/1").status_code == 200

    rebuilt = update_index(
        root, [(newcomer, _chunk(newcomer))], FakeEmbedder(), CHUNKING, rebuild=True
    )
    assert rebuilt.added == [make_doc_id("Report 2024.txt")]
    index = load_index(root, FakeEmbedder().identity, CHUNKING)
    try:
        assert [d.doc_id for d in index.documents()] == rebuilt.added
    finally:
        index.close()


def test_an_index_with_old_ids_can_still_shed_documents(tmp_path: Path) -> None:
    root = tmp_path / "index"
    _write_legacy_index(root)
    outcome = update_index(root, [], FakeEmbedder(), CHUNKING, remove=["report-2024.txt"])
    assert outcome.removed == ["report-2024.txt"] and outcome.version is not None


# -- what an ingest writes and reports -------------------------------------------------------------


def test_an_ingest_where_every_file_fails_writes_no_version(
    tmp_path: Path, client: TestClient
) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7 broken")
    ingested, outcome = _ingest(tmp_path / "index", [broken])
    assert [r.status for r in ingested.report.files] == [FileStatus.FAILED]
    assert outcome.version is None and current_version(tmp_path / "index") is None
    assert client.get("/v1/documents").status_code == 503


def test_a_rebuild_given_nothing_keeps_the_index(tmp_path: Path) -> None:
    root = tmp_path / "index"
    _ingest(root, [_write(tmp_path, 1, "plan.md")])
    version = current_version(root)
    outcome = update_index(root, [], FakeEmbedder(), CHUNKING, rebuild=True)
    assert outcome.version is None and current_version(root) == version


def test_unsupported_files_in_a_folder_are_reported_as_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    _write(folder, 1, "plan.md")
    (folder / "sub" / "budget.xlsx").write_bytes(b"PK\x03\x04")
    (folder / "LICENSE").write_text("All rights reserved.")
    (folder / ".notes.xlsx").write_bytes(b"hidden")
    named = tmp_path / "table.csv"
    named.write_text("a,b")

    report = ingest_files([folder, named], _chunk).report
    status = {r.path.relative_to(tmp_path).as_posix(): r.status for r in report.files}
    assert status == {
        "in/LICENSE": FileStatus.SKIPPED,
        "in/plan.md": FileStatus.OK,
        "in/sub/budget.xlsx": FileStatus.SKIPPED,
        "table.csv": FileStatus.FAILED,
    }
    assert [r.path.name for r in report.skipped] == ["LICENSE", "budget.xlsx"]
    assert "unsupported file type '.xlsx' (Chancery reads" in report.skipped[1].reason
    assert [r.path.name for r in report.failed] == ["table.csv"]
