"""The data-root app in process (fake embedder, whitespace chunks): what needs a job held still to
be seen, the bounded queue (429) and deletion while a job runs (409), both refused with nothing
left behind."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from index.store import WriterBusyError, writer_lock
from ingest.pipeline import IngestResult
from service.answerers import offer
from service.app import create_app, upload_limits
from service.build import build_app
from service.data_root import DataRoot
from service.engine import Engine
from service.extractive import extractive
from service.ingester import Chunking, Ingester
from service.jobs import JobSpec, JobState, JobStore
from service.library import Library
from service.settings import Settings
from service.uploads import Originals
from tests.conftest import WhitespaceTokenizer
from tests.fakes import CHUNKING_CONFIG, FakeEmbedder

PATIENCE = 30.0
"""Seconds a test waits for a job to reach a state; only a failing test waits that long."""


@dataclass(frozen=True)
class GatedIngester(Ingester):
    """An ingester whose jobs wait at `gate` before parsing, so that a test can hold one."""

    gate: threading.Event = field(default_factory=threading.Event)

    def parse(self, paths: Iterable[Path], on_file: Any = None) -> IngestResult:
        if not self.gate.wait(PATIENCE):
            raise AssertionError("the test never opened the gate")
        return super().parse(paths, on_file)


def data_root_app(settings: Settings, ingester: Ingester) -> FastAPI:
    """The app over the data root of `settings`, ingesting with `ingester` (fake embedder)."""

    def start() -> Library:
        library = DataRoot(
            settings.data_dir,
            lambda c: Engine(
                c.index_dir,
                ingester.embedder,
                offer({"extractive": extractive()}),
                collection=c.name,
            ),
            ingester,
            upload_limits(settings),
            max_queued_jobs=settings.max_queued_jobs,
        )
        library.start()
        return library

    return create_app(settings, start)


@pytest.fixture
def gate() -> threading.Event:
    return threading.Event()


@pytest.fixture
def client(tmp_path: Path, gate: threading.Event) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", max_queued_jobs=1)
    embedder = FakeEmbedder()
    ingester = GatedIngester(
        Chunking(WhitespaceTokenizer(), CHUNKING_CONFIG), embedder, 1024 * 1024, gate=gate
    )

    with TestClient(data_root_app(settings, ingester), raise_server_exceptions=False) as http:
        yield http
        gate.set()  # lets the runner's shutdown finish the held job


def upload(client: TestClient, name: str) -> Any:
    files = [("files", (name, f"{name}: the harbour opened in 1987.".encode()))]
    return client.post("/v1/collections/held/documents", files=files)


def state(client: TestClient, url: str, wanted: str) -> dict[str, Any]:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(url).json()
        if job["state"] == wanted:
            return job
        time.sleep(0.01)
    raise AssertionError(f"{url} never reached {wanted}: {job}")


def test_a_full_queue_answers_429_and_a_busy_collection_409(
    client: TestClient, gate: threading.Event, tmp_path: Path
) -> None:
    assert client.post("/v1/collections", json={"name": "held"}).status_code == 201
    staging = tmp_path / "data" / "collections" / "held" / "uploads"
    running = upload(client, "a.txt").json()["url"]
    state(client, running, "running")  # held at the gate
    waiting = upload(client, "b.txt")
    assert waiting.status_code == 202, waiting.text
    staged = set(staging.glob("*/*"))
    assert {path.name for path in staged} == {"b.txt"}  # a.txt is in the originals by now

    refused = upload(client, "c.txt")
    assert refused.status_code == 429, refused.text
    assert "1 jobs are waiting" in refused.json()["detail"]
    assert set(staging.glob("*/*")) == staged  # c.txt was not kept
    busy = client.delete("/v1/collections/held")
    assert busy.status_code == 409 and "in progress" in busy.json()["detail"]

    gate.set()
    first = state(client, running, "succeeded")
    second = state(client, waiting.json()["url"], "succeeded")
    assert [f["name"] for f in first["files"]] == ["a.txt"]
    assert [f["name"] for f in second["files"]] == ["b.txt"]
    assert second["index_version"] > first["index_version"]
    assert list(staging.iterdir()) == []
    listing = client.get("/v1/collections").json()["collections"]
    assert {"name": "held", "index_version": second["index_version"], "documents": 2} in listing
    assert client.delete("/v1/collections/held").status_code == 204


def eventually(probe: Callable[[], Path | None]) -> Path:
    deadline = time.monotonic() + PATIENCE
    while (found := probe()) is None:
        if time.monotonic() > deadline:
            raise AssertionError("what the test waits for never came")
        time.sleep(0.01)
    return found


@dataclass(frozen=True)
class RefusalCountingIngester(GatedIngester):
    """A gated ingester that signals each time the index's writer lock turned it away."""

    refused: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))

    def update(self, root: Path, documents: Any, **options: Any) -> Any:
        try:
            return super().update(root, documents, **options)
        except WriterBusyError:
            self.refused.release()
            raise


def test_a_job_keeps_its_originals_and_waits_for_another_writer(tmp_path: Path) -> None:
    """What replicas over one data root need: a job of one holds its kept files against another's
    garbage collection, and waits while another writer (a replica, the CLI) holds the index."""
    settings = Settings(data_dir=tmp_path / "data")
    embedder = FakeEmbedder()
    ingester = RefusalCountingIngester(
        Chunking(WhitespaceTokenizer(), CHUNKING_CONFIG), embedder, 1024 * 1024
    )

    collection = tmp_path / "data" / "collections" / "held"
    app = data_root_app(settings, ingester)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/v1/collections", json={"name": "held"}).status_code == 201
        url = upload(client, "a.txt").json()["url"]
        state(client, url, "running")
        kept = eventually(lambda: next((collection / "originals").glob("*/a.txt"), None))
        # The job waits at the gate to parse. Another replica's job ends now and collects
        # garbage: a.txt is in no version yet, and must stay.
        originals = Originals(collection / "originals")
        assert originals.collect_garbage(lambda: set()) == 0
        assert kept.is_file()

        with writer_lock(collection / "index"):  # another writer holds the index
            ingester.gate.set()
            for _ in range(2):
                assert ingester.refused.acquire(timeout=PATIENCE), "the job never tried"
            assert client.get(url).json()["state"] == "running"
        job = state(client, url, "succeeded")
        assert [f["status"] for f in job["files"]] == ["ok"]
        assert kept.is_file()
        assert client.get("/v1/collections/held/documents").json()["documents"][0]["file_name"] == (
            "a.txt"
        )


def test_garbage_collection_waits_for_no_one_and_removes_once_unused(tmp_path: Path) -> None:
    originals = Originals(tmp_path / "originals")
    staged = tmp_path / "x.txt"
    staged.write_bytes(b"x")
    sha256 = hashlib.sha256(b"x").hexdigest()
    with originals.in_use():
        kept = originals.keep(staged, sha256)
        assert originals.collect_garbage(lambda: set()) == 0
    assert kept.is_file()
    assert originals.collect_garbage(lambda: {(sha256, "x.txt")}) == 0
    assert originals.collect_garbage(lambda: set()) == 1
    assert not kept.exists()


def test_a_starting_server_prunes_job_records_past_their_keeping(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", keep_jobs_days=7)
    store = JobStore(tmp_path / "data" / "jobs")
    ended = datetime.now(UTC)
    old, recent = (
        store.create(JobSpec(collection="default")).model_copy(
            update={"state": JobState.SUCCEEDED, "finished_at": ended - timedelta(days=days)}
        )
        for days in (8, 6)
    )
    store.put(old)
    store.put(recent)
    store.close()
    app = build_app(settings, embedder=FakeEmbedder(), data_root=True)
    with TestClient(app) as client:
        assert client.get(f"/v1/jobs/{old.id}").status_code == 404
        kept = client.get(f"/v1/jobs/{recent.id}").json()
        assert kept["state"] == "succeeded", kept
