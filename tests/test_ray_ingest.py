"""`chancery ingest --ray`: the version built on a local two-worker Ray cluster is the one a
single process builds, a worker killed mid-batch costs nothing, a broken file is reported as
ever, and an ingest that fails leaves the previous version serving."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.embedder import Embedder, EmbedderIdentity, Vectors
from index.modes import Mode
from index.retrieve import Retriever
from index.store import Index, current_version, load_index
from index.update import BatchProgress, EmbedBatch, InProcessEmbedding, update_index
from ingest.loaders import DEFAULT_MAX_BYTES
from ingest.models import FileReport
from ingest.pipeline import ingest_files
from service.build import build_embedder, build_ingester
from service.cli import run
from service.ingester import Chunking, Ingester
from service.ray_ingest import WORKER_ENV, RayEmbedding, RayWorkers
from service.settings import Settings
from tests.conftest import REPO, SAMPLES, WhitespaceTokenizer
from tests.fakes import CHUNKING, CHUNKING_CONFIG, FakeEmbedder

SAMPLE_FILES = [
    SAMPLES / "northland-national-security-strategy.pdf",
    SAMPLES / "northland-energy-brief.md",
    SAMPLES / "astoria-relations-note.html",
]
QUESTIONS = [
    "What does the strategy say about energy security?",
    "How are relations with Astoria described?",
    "Which threats does Northland face?",
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """A local cluster of two worker CPUs for the module; where Ray cannot start, the tests
    skip, except in CI, where they must run."""
    try:
        import ray

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        # The workers import this module to build the test embedders below.
        env = {**WORKER_ENV, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": env},
        )
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must be able to start a local Ray cluster: {exc}")
        pytest.skip(f"Ray cannot start here: {exc}")
    yield
    ray.shutdown()


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 not really a PDF")
    return [*SAMPLE_FILES, broken]


@dataclass(frozen=True)
class Fake:
    """Builds, on a worker, the fake embedder; with `crash`, the first batch embedded by any
    worker kills its process (`os._exit`), with `hang`, the first batch never returns, and with
    `fail`, every batch raises."""

    crash: Path | None = None
    fail: bool = False
    hang: Path | None = None

    def __call__(self) -> Embedder:
        return _Faulty(FakeEmbedder(), self.crash, self.fail, self.hang)


def _first(marker: Path | None) -> bool:
    """True for exactly one call, in whichever worker, that finds `marker` absent (it is
    created exclusively)."""
    if marker is None:
        return False
    try:
        marker.open("x").close()
    except FileExistsError:
        return False
    return True


class _Faulty:
    def __init__(
        self, inner: FakeEmbedder, crash: Path | None, fail: bool, hang: Path | None
    ) -> None:
        self._inner, self._crash, self._fail, self._hang = inner, crash, fail, hang

    @property
    def identity(self) -> EmbedderIdentity:
        return self._inner.identity

    def embed(self, texts: Sequence[str]) -> Vectors:
        return self._inner.embed(texts)

    def embed_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[Vectors, Vectors]:
        if self._fail:
            raise RuntimeError("the embedder failed")
        if _first(self._crash):
            os._exit(1)
        if _first(self._hang):
            threading.Event().wait()  # alive, and never done
        return self._inner.embed_spans(texts, spans)


def fake_ingester(workers: RayWorkers | None = None) -> Ingester:
    return Ingester(
        Chunking(WhitespaceTokenizer(), CHUNKING_CONFIG),
        FakeEmbedder(),
        DEFAULT_MAX_BYTES,
        workers,
    )


def fake_workers(
    factory: Fake, max_restarts: int = 2, batch_seconds: float = 600, resubmissions: int = 3
) -> RayWorkers:
    return RayWorkers(
        RayEmbedding(
            factory,
            FakeEmbedder().identity,
            max_restarts=max_restarts,
            resubmissions=resubmissions,
            batch_seconds=batch_seconds,
        )
    )


def ingest(ingester: Ingester, root: Path, files: list[Path]) -> list[FileReport]:
    parsed = ingester.parse(files)
    ingester.update(root, parsed.documents)
    return parsed.report.files


def assert_same_index(ray_root: Path, local_root: Path, identity: EmbedderIdentity) -> None:
    built, expected = load_index(ray_root, identity), load_index(local_root, identity)
    try:
        ray_entries, local_entries = list(built.entries()), list(expected.entries())
        assert [e.document for e in ray_entries] == [e.document for e in local_entries]
        assert [e.chunks for e in ray_entries] == [e.chunks for e in local_entries]
        assert [e.sentences for e in ray_entries] == [e.sentences for e in local_entries]
        np.testing.assert_allclose(built.stored_vectors(), expected.stored_vectors(), atol=1e-5)
        np.testing.assert_allclose(built.sentence_vectors(), expected.sentence_vectors(), atol=1e-5)
    finally:
        built.close()
        expected.close()


def hit_ids(index: Index, embedder: Embedder, question: str) -> list[tuple[str, int]]:
    hits = Retriever(index, embedder).search(question, k=5, mode=Mode.HYBRID).hits
    return [(hit.chunk.chunk_id, hit.chunk.page_start) for hit in hits]


@pytest.mark.ray
def test_cli_ray_build_equals_the_single_process_build(
    cluster: None,
    files: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The real model on both sides, one torch thread each, as the workers use."""
    monkeypatch.setenv("CHANCERY_EMBED_THREADS", "1")
    settings = Settings()
    local_root, ray_root = tmp_path / "local", tmp_path / "ray"
    embedder = build_embedder(settings)
    local_reports = ingest(build_ingester(settings, embedder), local_root, files)
    on_ray: list[str] = []
    embed_batches, parse = RayEmbedding.embed_batches, RayWorkers.parse

    def counted_embed(self: RayEmbedding, batches: Sequence[EmbedBatch], progress: Any) -> Any:
        on_ray.append(f"embed {len(batches)} batches")
        return embed_batches(self, batches, progress)

    def counted_parse(self: RayWorkers, paths: Any, *args: Any) -> Any:
        on_ray.append(f"parse {len(paths)} files")
        return parse(self, paths, *args)

    monkeypatch.setattr(RayEmbedding, "embed_batches", counted_embed)
    monkeypatch.setattr(RayWorkers, "parse", counted_parse)
    capsys.readouterr()

    code = run(["ingest", *map(str, files), "--index", str(ray_root), "--ray", "auto"])

    out, err = capsys.readouterr()
    assert code == 1  # the broken file, as without Ray
    assert on_ray == ["parse 4 files", "embed 3 batches"]
    chunks = sum(report.chunks for report in local_reports)
    assert "3 added" in out and f" {chunks} chunks embedded" in out, out
    assert f"failed: {files[-1]}: the PDF is damaged" in err
    assert [r.status.value for r in local_reports] == ["ok", "ok", "ok", "failed"]
    assert_same_index(ray_root, local_root, embedder.identity)
    with_ray, without = (
        load_index(ray_root, embedder.identity),
        load_index(local_root, embedder.identity),
    )
    try:
        for question in QUESTIONS:
            assert hit_ids(with_ray, embedder, question) == hit_ids(without, embedder, question)
    finally:
        with_ray.close()
        without.close()
    import ray

    assert ray.is_initialized(), "a cluster the caller connected to stays connected"


@pytest.mark.ray
def test_parse_reports_like_ingest_files(cluster: None, files: list[Path], tmp_path: Path) -> None:
    """Order, failures, skipped files in folders and clashing names, as one process says them."""
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.xyz").write_text("not a format ingest reads")
    (folder / "northland-energy-brief.md").write_bytes(SAMPLE_FILES[1].read_bytes())
    paths = [*files, folder]
    chunking = fake_ingester().chunking
    heard: list[FileReport] = []

    parsed = fake_workers(Fake()).parse(paths, chunking, DEFAULT_MAX_BYTES, heard.append)

    expected = ingest_files(paths, chunking.chunk, DEFAULT_MAX_BYTES)
    assert parsed.report.files == expected.report.files == heard
    assert parsed.documents == expected.documents
    statuses = [r.status.value for r in parsed.report.files]
    assert statuses == ["ok", "ok", "ok", "failed", "failed", "skipped"]
    assert "another file named northland-energy-brief.md" in parsed.report.files[4].reason


@pytest.mark.ray
@pytest.mark.parametrize("max_restarts", [2, 0], ids=["ray-restarts", "resubmitted"])
def test_a_worker_killed_mid_batch_changes_nothing(
    cluster: None, files: list[Path], tmp_path: Path, max_restarts: int
) -> None:
    """Ray restarts the actor and retries its batch; with no restarts left, the batch goes to a
    new actor."""
    crash = tmp_path / "crashed"
    workers = fake_workers(Fake(crash=crash), max_restarts=max_restarts)
    ingest(fake_ingester(), tmp_path / "local", files)

    ingest(fake_ingester(workers), tmp_path / "ray", files)

    assert crash.exists(), "a worker died mid-batch"
    assert workers.embedding.resubmitted == (1 if max_restarts == 0 else 0)
    assert_same_index(tmp_path / "ray", tmp_path / "local", FakeEmbedder().identity)


@pytest.mark.ray
@pytest.mark.timeout(180)  # a hang that is never detected fails here, not at the suite's limit
def test_a_hung_worker_is_replaced_and_its_batch_embedded_elsewhere(
    cluster: None, files: list[Path], tmp_path: Path
) -> None:
    """A worker that never returns its batch is alive to Ray, so Ray never retries it; past the
    time allowed it is killed and its batch goes to a new worker."""
    hang = tmp_path / "hung"
    # The other batches take milliseconds. On a machine slow enough for one to take 10 s, it is
    # only resubmitted too, and the allowance of resubmissions covers many such: the outcome
    # does not depend on the machine's speed, only the time the test takes.
    workers = fake_workers(Fake(hang=hang), batch_seconds=10, resubmissions=20)
    ingest(fake_ingester(), tmp_path / "local", files)

    ingest(fake_ingester(workers), tmp_path / "ray", files)

    assert hang.exists(), "a worker hung"
    assert workers.embedding.resubmitted >= 1
    assert_same_index(tmp_path / "ray", tmp_path / "local", FakeEmbedder().identity)


@pytest.mark.ray
def test_a_failed_ray_ingest_leaves_the_previous_version(
    cluster: None, files: list[Path], tmp_path: Path
) -> None:
    root = tmp_path / "index"
    ingest(fake_ingester(), root, files[:1])
    before = current_version(root)
    changed = tmp_path / "northland-energy-brief.md"
    changed.write_text(SAMPLE_FILES[1].read_text() + "\n\nA new closing paragraph.\n")

    with pytest.raises(RuntimeError, match="the embedder failed"):
        ingest(fake_ingester(fake_workers(Fake(fail=True))), root, [changed])

    assert current_version(root) == before
    index = load_index(root, FakeEmbedder().identity)
    try:
        assert [d.file_name for d in index.documents()] == [SAMPLE_FILES[0].name]
    finally:
        index.close()


class Recording:
    """The in-process embedding, remembering which texts each batch held."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, ...]] = []
        self._inner = InProcessEmbedding(FakeEmbedder())

    def embed_batches(
        self, batches: Sequence[EmbedBatch], progress: BatchProgress | None
    ) -> list[tuple[Vectors, Vectors]]:
        self.batches += [batch.texts for batch in batches]
        return self._inner.embed_batches(batches, progress)


def test_an_embedding_gets_each_documents_batches_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without Ray: the seam cuts the batches as one process embedding document after document
    did, so a batch's vectors never depend on another document."""
    monkeypatch.setattr("index.update.EMBED_BATCH", 4)
    parsed = fake_ingester().parse(SAMPLE_FILES)
    recording = Recording()
    heard: list[int] = []

    update_index(tmp_path / "seam", parsed.documents, FakeEmbedder(), CHUNKING, embedding=recording)
    update_index(
        tmp_path / "plain", parsed.documents, FakeEmbedder(), CHUNKING, progress=heard.append
    )

    expected = [
        tuple(chunk.text for chunk in chunks[start : start + 4])
        for _, chunks in parsed.documents
        for start in range(0, len(chunks), 4)
    ]
    assert recording.batches == expected
    assert heard == [len(batch) for batch in expected]
    assert_same_index(tmp_path / "seam", tmp_path / "plain", FakeEmbedder().identity)


def test_without_ray_installed_one_sentence(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)

    code = run(["ingest", str(SAMPLE_FILES[1]), "--index", str(tmp_path), "--ray", "auto"])

    err = capsys.readouterr().err
    assert code != 0
    assert err.strip().splitlines() == [
        "chancery: --ray needs Ray, which is not installed: `pip install 'chancery[ray]'`"
    ]


@pytest.mark.ray
def test_an_unreachable_cluster_is_one_sentence(cluster: None, tmp_path: Path) -> None:
    """In its own process: this one is connected to the test cluster already."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the ingest tries it
    command = ["ingest", str(SAMPLE_FILES[1]), "--index", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", *command, "--ray", f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"chancery: cannot reach the Ray cluster at 127.0.0.1:{port}"
    ), result.stderr
    assert current_version(tmp_path) is None
