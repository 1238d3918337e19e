"""Ingest on a Ray cluster: one task per file parses and chunks it, model-holding actors embed
the batches, and this process, the one writer, builds the index version as it always does.

What comes back is what this process would have computed: reports and documents in the order
the files were found, each batch the vectors `embed_spans` gives it. A worker lost mid-batch is
restarted by Ray and its batch retried; when Ray gives up on it, the batch goes to a new worker.

The workers read the files at the paths this process sees: a local cluster, or nodes that share
the filesystem. Ray is imported only here, and only when an ingest asks for a cluster.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from index.embedder import Embedder, EmbedderIdentity, Vectors
from index.update import BatchProgress, EmbedBatch
from ingest.loaders import discover
from ingest.models import Chunk, Document, FileReport, FileStatus
from ingest.pipeline import Chunker, Collector, IngestResult, ingest_files
from service.errors import UnavailableError

if TYPE_CHECKING:
    from service.ingester import Chunking
    from service.settings import Settings

EmbedderFactory: TypeAlias = Callable[[], Embedder]
"""Builds an actor's embedder, on the worker; it is pickled, so it must not hold the model."""
Parsed: TypeAlias = tuple[FileReport, tuple[Document, tuple[Chunk, ...]] | None]

WORKER_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
"""The workers import the Hugging Face libraries, which read these on import: a missing model
file must be an error there too, never a download."""
CONNECT_TIMEOUT_S = 5.0
"""Ray itself retries an unreachable address for minutes before it gives up."""


class RayUnavailableError(UnavailableError):
    """Ray is not installed, or the cluster cannot be reached or started."""


class WorkerLostError(UnavailableError):
    """Embedding workers kept dying, more often than resubmitting their batches can make up for."""


class BatchTimeoutError(Exception):
    """A worker held a batch past the time allowed: taken for hung, as if it had died."""


@contextmanager
def ray_cluster(address: str) -> Iterator[None]:
    """Connected to the Ray cluster at `address` while the block runs; `auto` means the cluster
    `ray start` runs on this machine, else a new local one, which is shut down afterwards.

    A process already connected (a test, a notebook) keeps its connection and its cluster.
    """
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailableError(
            "--ray needs Ray, which is not installed: `pip install 'chancery[ray]'`"
        ) from exc
    if ray.is_initialized():
        yield
        return
    # Ray reports usage to its makers unless told not to; an ingest calls nobody.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    options: dict[str, Any] = {
        "log_to_driver": False,
        "logging_level": logging.WARNING,
        "runtime_env": {"env_vars": WORKER_ENV},
    }
    try:
        if address == "auto":
            try:
                ray.init(address="auto", **options)
            except ConnectionError:
                ray.init(address="local", include_dashboard=False, **options)
        else:
            _check_reachable(address)
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayUnavailableError(f"cannot connect to the Ray cluster at {address}: {exc}") from exc
    try:
        yield
    finally:
        # Only disconnects from a cluster someone else started; stops one started here.
        ray.shutdown()


def _check_reachable(address: str) -> None:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailableError(
            f"--ray takes HOST:PORT, ray://HOST:PORT or auto, not '{address}'"
        )
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise RayUnavailableError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); is it running?"
        ) from exc


class RayWorkers:
    """`Workers` on the connected Ray cluster (see `ray_cluster`): tasks parse, the actors of
    `embedding` embed."""

    def __init__(self, embedding: RayEmbedding) -> None:
        self._embedding = embedding

    @classmethod
    def from_settings(
        cls, settings: Settings, identity: EmbedderIdentity, *, workers: int | None = None
    ) -> RayWorkers:
        """Workers whose embedders are built from `settings` as this process would build its own
        (one torch thread each unless the settings say more), and must match `identity`."""
        threads = settings.embed_threads or 1
        model_path = None if settings.model_path is None else settings.model_path.resolve()
        # The workers need the model's settings, not the LLM's key.
        shipped = settings.model_copy(update={"model_path": model_path, "llm_api_key": None})
        return cls(
            RayEmbedding(
                partial(_load_embedder, shipped, threads),
                identity,
                workers=workers,
                cpus_per_worker=threads,
                batch_seconds=settings.ray_batch_seconds,
            )
        )

    @property
    def embedding(self) -> RayEmbedding:
        return self._embedding

    def parse(
        self,
        paths: Iterable[Path],
        chunking: Chunking,
        max_bytes: int,
        on_file: Callable[[FileReport], None] | None = None,
    ) -> IngestResult:
        """One task per file; the results are taken as they finish and reported in the order
        of the files, as `ingest_files` reports them."""
        import ray

        found = list(discover(paths))
        parse = ray.remote(_parse_file).options(num_cpus=1, max_retries=3)
        # One copy of the tokenizer in the object store, not one per task.
        chunker: Any = ray.put(chunking.chunk)
        tasks = {
            parse.remote(item.path.absolute(), chunker, max_bytes): number
            for number, item in enumerate(found)
            if not item.skipped
        }
        parsed: dict[int, Parsed] = {
            number: (FileReport(item.path, FileStatus.SKIPPED, reason=item.skipped), None)
            for number, item in enumerate(found)
            if item.skipped
        }
        collected = Collector(on_file)
        waiting = list(tasks)
        while len(collected) < len(found):
            while len(collected) in parsed:
                number = len(collected)
                report, loaded = parsed.pop(number)
                collected.add(dataclasses.replace(report, path=found[number].path), loaded)
            if waiting:
                done, waiting = ray.wait(waiting, num_returns=1)
                parsed[tasks[done[0]]] = ray.get(done[0])
        return collected.result


def _parse_file(path: Path, chunker: Chunker, max_bytes: int) -> Parsed:
    """A Ray task: one file, loaded and chunked as `ingest_files` does it."""
    result = ingest_files([path], chunker, max_bytes)
    [report] = result.report.files
    return report, (result.documents[0] if result.documents else None)


class RayEmbedding:
    """`BatchEmbedding` on a pool of actors, each of which loads the model once.

    Each actor has one batch at a time, so a lost actor loses one batch: Ray restarts the actor
    (up to `max_restarts`) and retries the batch there; past that, the batch goes back in the
    queue and a new actor takes the dead one's place (up to `resubmissions` times in all). An
    actor that holds a batch longer than `batch_seconds` is alive to Ray but hung (a stuck file
    system, a wedged library): it is killed and replaced the same way.
    """

    def __init__(
        self,
        embedder_factory: EmbedderFactory,
        identity: EmbedderIdentity,
        *,
        workers: int | None = None,
        cpus_per_worker: int = 1,
        max_restarts: int = 2,
        resubmissions: int = 3,
        batch_seconds: float = 600.0,
    ) -> None:
        self._factory = embedder_factory
        self._identity = identity
        self._workers = workers
        self._cpus = cpus_per_worker
        self._max_restarts = max_restarts
        self._resubmissions = resubmissions
        self._batch_seconds = batch_seconds
        self.actors: list[Any] = []
        """The live actors while `embed_batches` runs."""
        self.resubmitted = 0
        """Batches of the last `embed_batches` sent to a new actor after theirs died for good."""

    def embed_batches(
        self, batches: Sequence[EmbedBatch], progress: BatchProgress | None
    ) -> list[tuple[Vectors, Vectors]]:
        import ray
        from ray.exceptions import RayActorError

        self.resubmitted = 0
        if not batches:
            return []
        queue = deque(range(len(batches)))
        running: dict[Any, tuple[Any, int, float]] = {}
        """What each actor is embedding: (actor, batch number, deadline)."""
        results: dict[int, tuple[Vectors, Vectors]] = {}
        try:
            # Started now, not with the cluster: the parse tasks need the CPUs until here, and
            # an ingest with nothing new to embed never loads a model.
            self._start_actors(min(self._pool_size(), len(batches)))
            idle = list(self.actors)
            while queue or running:
                while queue and idle:
                    actor, number = idle.pop(), queue.popleft()
                    deadline = time.monotonic() + self._batch_seconds
                    running[actor.embed.remote(batches[number])] = (actor, number, deadline)
                wait_s = min(deadline for _, _, deadline in running.values()) - time.monotonic()
                done, _ = ray.wait(list(running), num_returns=1, timeout=max(0.0, wait_s))
                if not done:
                    for ref in [r for r, (_, _, d) in running.items() if d <= time.monotonic()]:
                        actor, number, _ = running.pop(ref)
                        hung = BatchTimeoutError(
                            f"a worker held a batch for more than {self._batch_seconds:g} s"
                        )
                        idle.append(self._replace(actor, hung))
                        queue.appendleft(number)
                    continue
                actor, number, _ = running.pop(done[0])
                try:
                    vectors, sentence_vectors = ray.get(done[0])
                except RayActorError as exc:
                    idle.append(self._replace(actor, exc))
                    queue.appendleft(number)
                    continue
                # Copies: what Ray returns is a read-only view of its object store, which goes
                # away with the cluster.
                results[number] = (np.array(vectors), np.array(sentence_vectors))
                idle.append(actor)
                if progress is not None:
                    progress(len(batches[number].texts))
        finally:
            for actor in self.actors:
                ray.kill(actor)
            self.actors = []
        return [results[number] for number in range(len(batches))]

    def _pool_size(self) -> int:
        import ray

        if self._workers is not None:
            return self._workers
        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        return max(1, int(resources.get("CPU", 1)) // self._cpus)

    def _start_actors(self, count: int) -> None:
        """`count` more actors in `actors`, their models loaded (side by side) and checked
        against the one the index records."""
        import ray
        from ray.exceptions import RayActorError

        actor_class = ray.remote(_EmbeddingActor).options(
            num_cpus=self._cpus,
            max_restarts=self._max_restarts,
            max_task_retries=self._max_restarts,
        )
        # Ray's stubs do not follow a class's methods through `ray.remote`.
        started: list[Any] = [actor_class.remote(self._factory) for _ in range(count)]
        self.actors += started
        try:
            identities: list[EmbedderIdentity] = ray.get(
                [actor.identity.remote() for actor in started]
            )
        except RayActorError as exc:
            raise WorkerLostError(f"an embedding worker could not start: {exc}") from exc
        for identity in identities:
            if identity != self._identity:
                raise RayUnavailableError(
                    f"the Ray workers' embedding model ({identity.model_id}, weights "
                    f"{identity.weights_sha256[:12]}) is not this machine's "
                    f"({self._identity.model_id}, weights {self._identity.weights_sha256[:12]}); "
                    "install the same model on every node"
                )

    def _replace(self, dead: Any, cause: Exception) -> Any:
        """A new actor in the place of `dead` (killed, if it still runs)."""
        import ray

        self.resubmitted += 1
        if self.resubmitted > self._resubmissions:
            raise WorkerLostError(
                f"embedding workers died or hung {self.resubmitted} times, even after Ray's "
                f"restarts; the last: {cause}"
            ) from cause
        self.actors.remove(dead)
        ray.kill(dead)
        self._start_actors(1)
        return self.actors[-1]


class _EmbeddingActor:
    """A Ray actor: builds its embedder once, then embeds batch after batch."""

    def __init__(self, factory: EmbedderFactory) -> None:
        self._embedder = factory()

    def identity(self) -> EmbedderIdentity:
        return self._embedder.identity

    def embed(self, batch: EmbedBatch) -> tuple[Vectors, Vectors]:
        return self._embedder.embed_spans(batch.texts, batch.spans)


def _load_embedder(settings: Settings, threads: int) -> Embedder:
    """The embedder `settings` ask for, its model loaded: an actor's first batch should not wait
    for it, and a worker that cannot load it should fail before it is given one."""
    from service.build import build_embedder

    return build_embedder(settings, threads=threads).load()


@contextmanager
def ray_workers(
    settings: Settings, identity: EmbedderIdentity, address: str
) -> Iterator[RayWorkers]:
    """Workers on the cluster at `address`, for as long as the block runs."""
    with ray_cluster(address):
        yield RayWorkers.from_settings(settings, identity)
