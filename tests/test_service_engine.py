"""The live engine switches index versions off the request path.

Loads are injected and gated on events, so every ordering below is forced, never waited out.
"""

from __future__ import annotations

import gc
import logging
import shutil
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from index.retrieve import Hit
from index.store import CURRENT, ChunkingParameters, StoreError, current_version
from index.update import update_index
from ingest.chunking import ChunkingConfig, chunk_document
from ingest.loaders import load_bytes
from ingest.models import Chunk, Document
from service.answerers import offer
from service.answering import Answer
from service.engine import DEFAULT_COLLECTION, Engine, NoIndexError, Snapshot, open_snapshot
from service.extractive import extractive
from tests.conftest import WhitespaceTokenizer
from tests.fakes import FakeEmbedder

CONFIG = ChunkingConfig(size=40, overlap=8, max_tokens=60)
CHUNKING = ChunkingParameters(CONFIG.size, CONFIG.overlap, CONFIG.max_tokens)
ENERGY = "Gas storage must be full before winter. The regulator checks it every month."
BORDER = "Astoria has four border crossings with Northland. Trucks wait two hours."
WAIT_SECONDS = 30
"""Only a bound on a broken test; every wait below ends on an event long before it."""


def _doc(name: str, text: str) -> tuple[Document, list[Chunk]]:
    document = load_bytes(name, text.encode()).document
    return document, chunk_document(document, WhitespaceTokenizer(), CONFIG)


def _version(root: Path) -> Path:
    version = current_version(root)
    assert version is not None
    return version


def _files(engine: Engine) -> set[str]:
    return {d.file_name for d in engine.snapshot().index.documents()}


class GatedLoader:
    """The real loader, counting its calls; each background load waits for `release`."""

    def __init__(self, embedder: FakeEmbedder, gate_after: int = 1) -> None:
        self._embedder = embedder
        self._gate_after = gate_after
        self.calls: list[Path] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.fail_with: Exception | None = None

    def __call__(self, version: Path) -> Snapshot:
        self.calls.append(version)
        if len(self.calls) > self._gate_after:
            self.started.set()
            assert self.release.wait(WAIT_SECONDS), "the test never released the load"
            if self.fail_with is not None:
                raise self.fail_with
        return open_snapshot(version, self._embedder, offer({"extractive": extractive()}))


@pytest.fixture
def embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def root(tmp_path: Path, embedder: FakeEmbedder) -> Path:
    update_index(tmp_path, [_doc("energy.txt", ENERGY)], embedder, CHUNKING)
    return tmp_path


@pytest.fixture
def loader(embedder: FakeEmbedder) -> GatedLoader:
    return GatedLoader(embedder)


@pytest.fixture
def engine(root: Path, embedder: FakeEmbedder, loader: GatedLoader) -> Iterator[Engine]:
    engine = Engine(root, embedder, offer({"extractive": extractive()}), load=loader)
    yield engine
    loader.release.set()  # a failing test must not leave a loader thread waiting
    assert engine.wait_for_swap(WAIT_SECONDS)


def _ingest_border(root: Path, embedder: FakeEmbedder) -> Path:
    update_index(root, [_doc("energy.txt", ENERGY), _doc("border.txt", BORDER)], embedder, CHUNKING)
    return _version(root)


def test_the_first_load_happens_on_the_request(
    engine: Engine, root: Path, loader: GatedLoader
) -> None:
    snapshot = engine.snapshot()
    assert snapshot.index.directory == _version(root)
    assert loader.calls == [_version(root)]
    assert engine.loading is None
    assert engine.ask("gas storage before winter").index_version == _version(root).name


def test_results_are_domain_objects_of_the_engines_collection(engine: Engine, root: Path) -> None:
    asked = engine.ask("gas storage before winter", k=2)
    assert isinstance(asked.answer, Answer)
    assert asked.collection == engine.collection == DEFAULT_COLLECTION
    assert {"answer_ms", "total_ms"} <= set(asked.timings_ms)
    found = engine.search("gas storage before winter", k=2)
    assert found.hits and all(isinstance(hit, Hit) for hit in found.hits)
    assert (found.collection, found.index_version) == (DEFAULT_COLLECTION, _version(root).name)


def test_the_old_version_answers_while_the_new_one_loads(
    engine: Engine, root: Path, embedder: FakeEmbedder, loader: GatedLoader
) -> None:
    old = engine.snapshot().index.directory
    new = _ingest_border(root, embedder)

    assert engine.snapshot().index.directory == old  # returns at once, the load is gated
    assert loader.started.wait(WAIT_SECONDS)
    assert engine.loading == new
    for _ in range(3):
        assert engine.ask("border crossings").index_version == old.name
        assert _files(engine) == {"energy.txt"}
    assert not engine.wait_for_swap(timeout=0)

    loader.release.set()
    assert engine.wait_for_swap(WAIT_SECONDS)
    assert engine.loading is None
    assert engine.ask("border crossings").index_version == new.name
    assert _files(engine) == {"energy.txt", "border.txt"}
    assert loader.calls == [old, new]


def test_many_requests_during_a_swap_start_one_load(
    engine: Engine, root: Path, embedder: FakeEmbedder, loader: GatedLoader
) -> None:
    old = engine.snapshot().index.directory
    new = _ingest_border(root, embedder)
    threads = 16
    barrier = threading.Barrier(threads)
    seen: list[Path] = []

    def request() -> None:
        barrier.wait(WAIT_SECONDS)
        for _ in range(20):
            seen.append(engine.snapshot().index.directory)

    workers = [threading.Thread(target=request) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WAIT_SECONDS)
    assert not any(worker.is_alive() for worker in workers)

    assert set(seen) == {old}
    assert loader.calls == [old, new]
    loader.release.set()
    assert engine.wait_for_swap(WAIT_SECONDS)
    assert engine.snapshot().index.directory == new
    assert loader.calls == [old, new]


def test_a_version_that_moves_during_a_load_is_loaded_after_it(
    engine: Engine, root: Path, embedder: FakeEmbedder, loader: GatedLoader
) -> None:
    engine.snapshot()
    middle = _ingest_border(root, embedder)
    engine.snapshot()
    assert loader.started.wait(WAIT_SECONDS)
    update_index(root, [_doc("energy.txt", ENERGY + " Prices rose.")], embedder, CHUNKING)
    last = _version(root)

    engine.snapshot()  # a load is in flight: no second one
    assert engine.loading == middle
    loader.release.set()
    assert engine.wait_for_swap(WAIT_SECONDS)
    assert engine.snapshot().index.directory == middle  # this check starts the next load
    assert engine.wait_for_swap(WAIT_SECONDS)
    assert engine.snapshot().index.directory == last
    assert loader.calls[1:] == [middle, last]


def test_a_failed_load_keeps_the_old_version_and_is_reported_once(
    engine: Engine,
    root: Path,
    embedder: FakeEmbedder,
    loader: GatedLoader,
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = engine.snapshot().index.directory
    bad = _ingest_border(root, embedder)
    loader.fail_with = StoreError("the index was built with another model; rebuild it")
    loader.release.set()
    with caplog.at_level(logging.ERROR, logger="chancery"):
        engine.snapshot()
        assert engine.wait_for_swap(WAIT_SECONDS)
        for _ in range(5):
            assert engine.ask("gas storage").index_version == old.name
        assert engine.wait_for_swap(WAIT_SECONDS)

    failure = engine.failure
    assert failure is not None
    assert failure.version == bad
    assert "another model" in str(failure.error)
    assert loader.calls == [old, bad]  # not retried while `current` stays on it
    logged = [r for r in caplog.records if r.name == "chancery"]
    assert len(logged) == 1
    assert bad.name in logged[0].getMessage() and old.name in logged[0].getMessage()

    loader.fail_with = None
    fixed = _ingest_border_again(root, embedder)
    engine.snapshot()  # `current` moved: try again
    assert engine.wait_for_swap(WAIT_SECONDS)
    assert engine.snapshot().index.directory == fixed
    assert engine.failure is None


def _ingest_border_again(root: Path, embedder: FakeEmbedder) -> Path:
    update_index(root, [_doc("border.txt", BORDER + " Buses wait one hour.")], embedder, CHUNKING)
    return _version(root)


def test_a_half_deleted_version_keeps_the_old_one_with_the_real_loader(
    root: Path, embedder: FakeEmbedder
) -> None:
    engine = Engine(root, embedder, offer({"extractive": extractive()}))
    old = engine.snapshot().index.directory
    broken = _ingest_border(root, embedder)
    (broken / "manifest.json").unlink()

    engine.snapshot()
    assert engine.wait_for_swap(WAIT_SECONDS)
    assert engine.snapshot().index.directory == old
    failure = engine.failure
    assert failure is not None
    assert isinstance(failure.error, StoreError)
    assert failure.version == broken


def test_a_failed_first_load_raises(root: Path, embedder: FakeEmbedder) -> None:
    engine = Engine(
        root, FakeEmbedder(weights_sha256="0" * 64), offer({"extractive": extractive()})
    )
    with pytest.raises(StoreError, match="built with the model"):
        engine.snapshot()
    assert engine.loading is None


def test_no_index_raises(tmp_path: Path, embedder: FakeEmbedder) -> None:
    with pytest.raises(NoIndexError):
        Engine(tmp_path, embedder, offer({"extractive": extractive()})).snapshot()


def test_the_old_snapshot_is_freed_when_its_last_request_lets_go(
    engine: Engine, root: Path, embedder: FakeEmbedder, loader: GatedLoader
) -> None:
    held = engine.snapshot()  # a request still running on the old version
    gone = weakref.ref(held)
    _ingest_border(root, embedder)
    engine.snapshot()
    loader.release.set()
    assert engine.wait_for_swap(WAIT_SECONDS)

    assert held.index.documents()[0].file_name == "energy.txt"  # still usable after the switch
    gc.disable()  # prove reference counting frees it, not a collection that happens to run
    try:
        del held
        assert gone() is None
    finally:
        gc.enable()


def test_a_swap_to_a_copied_version_is_noticed(
    engine: Engine, root: Path, loader: GatedLoader
) -> None:
    # What bench/http_latency.py does: a copy of a version under a new name, `current`
    # switched to it with one rename.
    old = engine.snapshot().index.directory
    copy = root / f"{old.name}-copy"
    shutil.copytree(old, copy)
    _switch(root, copy)
    loader.release.set()
    engine.snapshot()
    assert engine.wait_for_swap(WAIT_SECONDS)
    assert engine.snapshot().index.directory == copy


def _switch(root: Path, version: Path) -> None:
    link = root / ".tmp-test-link"
    link.symlink_to(version.name)
    link.replace(root / CURRENT)


def test_a_snapshot_answers_after_writers_removed_its_folder(
    engine: Engine, root: Path, embedder: FakeEmbedder, loader: GatedLoader
) -> None:
    """A replica idle while two versions landed (each writer keeps only the newest two) still
    answers from the version it holds while it loads the newest, though its folder is gone: a
    snapshot opens or maps every file it reads when it loads (the answerers map the sentence
    vectors), never later by path."""
    old = engine.snapshot().index.directory  # loaded, never searched
    _ingest_border(root, embedder)
    update_index(root, [_doc("energy.txt", ENERGY + " Again.")], embedder, CHUNKING)
    assert not old.exists()

    asked = engine.ask("gas storage before winter")  # starts the (gated) load of the newest
    assert asked.index_version == old.name
    assert asked.answer.citations
    assert engine.search("gas storage", k=2).hits
