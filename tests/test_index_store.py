"""Index persistence: manifest, refusal of mismatches, incremental updates, atomic writes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from index.modes import Mode
from index.retrieve import Retriever
from index.store import (
    CURRENT,
    MANIFEST,
    WRITE_STEPS,
    ChunkingParameters,
    StoreError,
    current_version,
    load_index,
    require_index,
    writer_lock,
)
from index.update import update_index
from ingest.chunking import ChunkingConfig, chunk_document
from ingest.loaders import load_bytes
from ingest.models import Chunk, Document
from ingest.sentences import sentence_spans
from tests.conftest import WhitespaceTokenizer
from tests.fakes import FakeEmbedder

CONFIG = ChunkingConfig(size=40, overlap=8, max_tokens=60)
CHUNKING = ChunkingParameters(CONFIG.size, CONFIG.overlap, CONFIG.max_tokens)
QUESTIONS = [
    "gas storage before winter",
    "who chairs the security council",
    "border crossings with Astoria",
    "cyber attacks on hospitals",
]
TEXTS = {
    "energy.txt": "Gas storage must be full before winter. The regulator checks it every month.\f"
    "Electricity imports come from Velmark. Wind farms grow each year.",
    "council.txt": "The Prime Minister chairs the security council. It meets every quarter.\f"
    "Its secretary prepares the agenda and the minutes.",
    "border.txt": "Astoria has four border crossings with Northland. Trucks wait two hours.",
    "cyber.md": "# Cyber\n\nHospitals suffered cyber attacks in 2024. A new agency helps them.",
}


def _doc(name: str, text: str | None = None) -> tuple[Document, list[Chunk]]:
    document = load_bytes(name, (text or TEXTS[name]).encode()).document
    return document, chunk_document(document, WhitespaceTokenizer(), CONFIG)


def _results(root: Path, embedder: FakeEmbedder) -> list[list[tuple[str, int, str]]]:
    index = load_index(root, embedder.identity, CHUNKING)
    retriever = Retriever(index, embedder)
    try:
        return [
            [
                (h.file_name, h.chunk.page_start, h.chunk.chunk_id)
                for h in retriever.search(q, k=5, mode=mode).hits
            ]
            for q in QUESTIONS
            for mode in Mode
        ]
    finally:
        index.close()


def test_a_new_index_has_a_manifest_recording_what_built_it(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    update_index(tmp_path, [_doc("energy.txt"), _doc("border.txt")], embedder, CHUNKING)
    manifest = json.loads((require_index(tmp_path) / MANIFEST).read_text())
    assert manifest["schema_version"] == 1
    assert manifest["embedder"]["weights_sha256"] == "f" * 64
    assert manifest["embedder"]["dimension"] == 64
    assert manifest["chunking"] == {"size": 40, "overlap": 8, "max_tokens": 60}
    assert [d["file_name"] for d in manifest["documents"]] == ["border.txt", "energy.txt"]
    assert manifest["documents"][1]["pages"] == 2
    assert {"python", "faiss-cpu", "bm25s"} <= set(manifest["libraries"])
    assert manifest["vector_index"]["kind"] == "flat"
    assert (tmp_path / CURRENT).is_symlink()


def test_loading_refuses_another_model_or_chunking(tmp_path: Path) -> None:
    update_index(tmp_path, [_doc("energy.txt")], FakeEmbedder(), CHUNKING)
    with pytest.raises(StoreError, match="was built with the model"):
        load_index(tmp_path, FakeEmbedder(weights_sha256="0" * 64).identity)
    with pytest.raises(StoreError, match="rebuild it"):
        load_index(tmp_path, FakeEmbedder().identity, ChunkingParameters(100, 10, 254))
    with pytest.raises(StoreError, match="holds no index"):
        load_index(tmp_path / "missing", FakeEmbedder().identity)


def test_loading_refuses_another_schema_version(tmp_path: Path) -> None:
    update_index(tmp_path, [_doc("energy.txt")], FakeEmbedder(), CHUNKING)
    manifest_path = require_index(tmp_path) / MANIFEST
    data = json.loads(manifest_path.read_text())
    data["schema_version"] = 99
    manifest_path.write_text(json.dumps(data))
    with pytest.raises(StoreError, match="schema version 99"):
        load_index(tmp_path, FakeEmbedder().identity)


def test_the_manifest_keeps_the_format_earlier_versions_wrote(tmp_path: Path) -> None:
    update_index(tmp_path, [_doc("energy.txt")], FakeEmbedder(), CHUNKING)
    path = require_index(tmp_path) / MANIFEST
    text = path.read_text(encoding="utf-8")
    # What the dataclass manifest wrote, byte for byte: json.dumps of it, indent 2, unescaped.
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    data = json.loads(text)
    del data["libraries"]  # the first versions did not record them
    path.write_text(json.dumps(data), encoding="utf-8")
    index = load_index(tmp_path, FakeEmbedder().identity, CHUNKING)
    try:
        assert index.manifest.libraries == {}
        assert index.manifest.chunking == CHUNKING
        assert index.manifest.documents[0].file_name == "energy.txt"
    finally:
        index.close()


def _without_dimension(data: dict[str, Any]) -> None:
    del data["embedder"]["dimension"]


def _with_words_for_count(data: dict[str, Any]) -> None:
    data["chunk_count"] = "many"


def _without_title(data: dict[str, Any]) -> None:
    del data["documents"][0]["title"]


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (_without_dimension, "embedder.dimension: Field required"),
        (_with_words_for_count, "chunk_count: Input should be a valid integer"),
        (_without_title, "documents.0.title: Field required"),
        (None, "Invalid JSON"),
    ],
)
def test_a_damaged_manifest_says_which_field_and_to_rebuild(
    tmp_path: Path, damage: Callable[[dict[str, Any]], None] | None, problem: str
) -> None:
    update_index(tmp_path, [_doc("energy.txt")], FakeEmbedder(), CHUNKING)
    path = require_index(tmp_path) / MANIFEST
    if damage is None:
        path.write_text(path.read_text()[:40])
    else:
        data = json.loads(path.read_text())
        damage(data)
        path.write_text(json.dumps(data))
    with pytest.raises(StoreError, match=r"manifest in .* is unreadable \(") as raised:
        load_index(tmp_path, FakeEmbedder().identity)
    message = str(raised.value)
    assert problem in message and message.endswith("; rebuild the index")
    assert "\n" not in message and "errors.pydantic.dev" not in message


def test_unchanged_files_are_not_embedded_again(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    first = update_index(tmp_path, [_doc("energy.txt"), _doc("council.txt")], embedder, CHUNKING)
    embedded = embedder.texts_embedded
    assert first.added == ["energy.txt", "council.txt"] and embedded > 0
    version = current_version(tmp_path)

    again = update_index(tmp_path, [_doc("energy.txt"), _doc("council.txt")], embedder, CHUNKING)
    assert again.unchanged == ["energy.txt", "council.txt"]
    assert embedder.texts_embedded == embedded
    assert again.version is None and current_version(tmp_path) == version

    changed = _doc("council.txt", "The Minister of Defence chairs the council now.")
    third = update_index(tmp_path, [_doc("energy.txt"), changed], embedder, CHUNKING)
    assert third.replaced == ["council.txt"] and third.unchanged == ["energy.txt"]
    assert third.embedded_chunks == len(changed[1])
    sentences = sum(len(sentence_spans(chunk.text)) for chunk in changed[1])
    assert embedder.texts_embedded == embedded + len(changed[1]) + sentences


def test_any_sequence_of_adds_and_removes_searches_like_a_fresh_build(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    incremental = tmp_path / "incremental"
    update_index(incremental, [_doc("energy.txt"), _doc("cyber.md")], embedder, CHUNKING)
    update_index(incremental, [_doc("council.txt", "An old council text.")], embedder, CHUNKING)
    update_index(incremental, [_doc("border.txt")], embedder, CHUNKING, remove=["cyber.md"])
    update_index(incremental, [_doc("council.txt"), _doc("cyber.md")], embedder, CHUNKING)
    update_index(incremental, [], embedder, CHUNKING, remove=["energy.txt"])
    update_index(incremental, [_doc("energy.txt")], embedder, CHUNKING)

    fresh = tmp_path / "fresh"
    names = ["cyber.md", "border.txt", "energy.txt", "council.txt"]
    update_index(fresh, [_doc(n) for n in names], embedder, CHUNKING)
    assert _results(incremental, embedder) == _results(fresh, embedder)
    assert any(_results(fresh, embedder))


def test_removing_an_unknown_document_says_which_exist(tmp_path: Path) -> None:
    update_index(tmp_path, [_doc("energy.txt")], FakeEmbedder(), CHUNKING)
    with pytest.raises(StoreError, match=r"no document 'nope' .*energy\.txt"):
        update_index(tmp_path, [], FakeEmbedder(), CHUNKING, remove=["nope"])


def test_a_failure_mid_write_leaves_the_previous_index_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = FakeEmbedder()
    update_index(tmp_path, [_doc("energy.txt")], embedder, CHUNKING)
    before = _results(tmp_path, embedder)
    version = current_version(tmp_path)

    def explode(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("index.store.write_records", explode)
    with pytest.raises(OSError, match="disk full"):
        update_index(tmp_path, [_doc("border.txt")], embedder, CHUNKING)
    assert current_version(tmp_path) == version
    assert _results(tmp_path, embedder) == before
    assert not list(tmp_path.glob(".tmp-*"))


def test_a_second_writer_is_refused_while_one_works(tmp_path: Path) -> None:
    with writer_lock(tmp_path), pytest.raises(StoreError, match="another process"):
        update_index(tmp_path, [_doc("energy.txt")], FakeEmbedder(), CHUNKING)


def test_a_folder_with_other_files_is_not_taken_over(tmp_path: Path) -> None:
    (tmp_path / "thesis.docx").write_text("precious")
    with pytest.raises(StoreError, match="not empty and holds no index"):
        update_index(tmp_path, [_doc("energy.txt")], FakeEmbedder(), CHUNKING)
    assert (tmp_path / "thesis.docx").read_text() == "precious"


_WRITER = """
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, {repo!r})
from index.update import update_index
from tests.fakes import FakeEmbedder
from tests.test_index_store import CHUNKING, _doc

root, step = Path(sys.argv[1]), sys.argv[2]


def stop_at(reached):
    if reached == step:
        os.kill(os.getpid(), signal.SIGKILL)


update_index(root, [_doc("border.txt")], FakeEmbedder(), CHUNKING, checkpoint=stop_at)
"""


def _an_index_with_history(root: Path, embedder: FakeEmbedder) -> None:
    """energy.txt in service, an older version beside it, and what two killed writers left."""
    update_index(root, [_doc("energy.txt", "An older text about gas storage.")], embedder, CHUNKING)
    update_index(root, [_doc("energy.txt")], embedder, CHUNKING)
    staging = root / ".tmp-20000101T000000000000Z-1"
    staging.mkdir()
    (staging / "vectors.npy").write_bytes(b"half")
    (root / ".tmp-link-1").symlink_to(require_index(root).name)


def test_a_writer_killed_at_any_moment_leaves_a_loadable_index(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    template = tmp_path / "template"
    _an_index_with_history(template, embedder)
    old_results = _results(template, embedder)
    finished = tmp_path / "finished"
    shutil.copytree(template, finished, symlinks=True)
    reached: list[str] = []
    update_index(finished, [_doc("border.txt")], embedder, CHUNKING, checkpoint=reached.append)
    # In order and complete, so a step added to the write without a name here fails this test.
    assert list(dict.fromkeys(reached)) == list(WRITE_STEPS)
    new_results = _results(finished, embedder)
    assert new_results != old_results

    script = tmp_path / "writer.py"
    script.write_text(_WRITER.format(repo=str(Path(__file__).resolve().parents[1])))
    switched = WRITE_STEPS.index("current-switched")
    for number, step in enumerate(WRITE_STEPS):
        root = tmp_path / step
        shutil.copytree(template, root, symlinks=True)
        reader = load_index(root, embedder.identity, CHUNKING)
        try:
            read_before = Retriever(reader, embedder).search("gas storage", k=3).hits
            writer = subprocess.run(
                [sys.executable, str(script), str(root), step],
                capture_output=True,
                text=True,
                timeout=300,  # a hung child, not a pace the writer must keep
                check=False,
            )
            assert writer.returncode == -signal.SIGKILL, f"{step} not reached: {writer.stderr}"
            assert Retriever(reader, embedder).search("gas storage", k=3).hits == read_before
        finally:
            reader.close()
        new = number >= switched
        assert _results(root, embedder) == (new_results if new else old_results), step

        served = require_index(root)
        update_index(root, [_doc("cyber.md")], embedder, CHUNKING)
        index = load_index(root, embedder.identity, CHUNKING)
        try:
            names = sorted(d.file_name for d in index.documents())
        finally:
            index.close()
        assert names == sorted(["cyber.md", "energy.txt", *(["border.txt"] if new else [])])
        assert not list(root.glob(".tmp-*")), step
        assert {p.name for p in root.glob("v-*")} == {served.name, require_index(root).name}


def test_old_versions_go_unless_replaced_within_the_retention(tmp_path: Path) -> None:
    """Replicas on other hosts need a replaced version for as long as they take to switch."""
    embedder = FakeEmbedder()
    names = ["energy.txt", "council.txt", "border.txt", "cyber.md"]
    written = []
    for count in range(1, 4):
        update_index(
            tmp_path, [_doc(n) for n in names[:count]], embedder, CHUNKING, retain_seconds=3600
        )
        written.append(require_index(tmp_path))
    assert sorted(tmp_path.glob("v-*")) == written  # each replaced less than an hour ago

    # The second version was replaced two hours ago: the next write removes the first two
    # (the first was replaced when the second was written), never the one replaced last.
    hours_ago = written[1].stat().st_mtime - 7200
    os.utime(written[1], (hours_ago, hours_ago))
    os.utime(written[2], (hours_ago, hours_ago))
    update_index(tmp_path, [_doc(n) for n in names], embedder, CHUNKING, retain_seconds=3600)
    assert sorted(tmp_path.glob("v-*")) == [written[2], require_index(tmp_path)]

    update_index(tmp_path, [_doc("energy.txt")], embedder, CHUNKING)  # no retention
    assert len(list(tmp_path.glob("v-*"))) == 2
