"""A data root served over HTTP: named collections, uploads queued as ingest jobs, job records.

Layout of a data root DATA (`CHANCERY_DATA_DIR`):

    DATA/collections/NAME/index/       the index folder (versions, manifest, `current`)
    DATA/collections/NAME/originals/   uploaded and ingested files as they came, by content
    DATA/collections/NAME/uploads/     files staged for jobs that have not run yet
    DATA/jobs/<id>.json                one record per job, kept after it ends
    DATA/cache/pages/                  page images drawn for the page viewer (page_images.py)
    DATA/trash/                        collections being deleted

At startup, before anything is served, jobs a stopped process left queued or running are marked
failed (`JobStore.recover`), then their staged files are removed (`CollectionRegistry.sweep`),
and the collection `default` is created when missing.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from index.store import StoreError, writer_lock
from service.collections import (
    Collection,
    CollectionBusyError,
    CollectionError,
    CollectionRegistry,
)
from service.engine import Engine
from service.errors import InvalidRequestError, NotFoundError
from service.ingest_job import IngestJob
from service.ingester import Ingester
from service.jobs import FileResult, Job, JobFile, JobRunner, JobSpec, JobStore
from service.library import CollectionInfo, collection_info, current_manifest
from service.multipart import FILES_FIELD, FilePart
from service.uploads import Originals, UploadBatch, UploadLimits

log = logging.getLogger("chancery")

JOBS = "jobs"
SHUTDOWN_SECONDS = 10.0
KEEP_JOBS = timedelta(days=30)
"""How long the record of a finished job is kept (clients poll it, operators read it)."""
_PRUNE_EVERY = 3600.0
"""Seconds between prunings of job records while the server runs (each lists every record)."""
"""How long a stopping server waits for running jobs; one cut short is failed at the next start
(the index keeps the version it had, as after a crash)."""
_TOKEN_BYTES = 16


class DataRoot:
    """The collections under `root`, each answered by the engine `engine_for` opens (cheaply:
    an engine loads its index on first use), and their ingest jobs, run with `ingester`."""

    def __init__(
        self,
        root: Path,
        engine_for: Callable[[Collection], Engine],
        ingester: Ingester,
        limits: UploadLimits,
        *,
        max_queued_jobs: int,
        keep_jobs: timedelta = KEEP_JOBS,
    ) -> None:
        self.root = root
        self.keep_jobs = keep_jobs
        self._pruned_at = 0.0
        self.limits = limits
        self.store = JobStore(root / JOBS)
        self.registry: CollectionRegistry[Engine] = CollectionRegistry(
            root, engine_for, in_use=self._busy
        )
        work = IngestJob(self.registry, ingester)
        self.runner = JobRunner(
            self.store,
            work,
            max_queued=max_queued_jobs,
            version_of=self._version_of,
            discard=work.discard,
        )
        self._deleting = threading.Lock()
        """One delete at a time: a second would find the folder the first is moving away."""

    def start(self) -> None:
        for job in self.store.recover(self._version_of):
            log.warning("job %s of collection %s: %s", job.id, job.spec.collection, job.error)
        self._prune_jobs()
        self.runner.on_finish(lambda _: self._prune_jobs(only_if_due=True))
        self.registry.sweep()
        self.registry.ensure_default()

    def _prune_jobs(self, *, only_if_due: bool = False) -> None:
        now = time.monotonic()
        if only_if_due and now - self._pruned_at < _PRUNE_EVERY:
            return
        self._pruned_at = now
        pruned = self.store.prune(datetime.now(UTC) - self.keep_jobs)
        if pruned:
            log.info("removed %d job records older than %s", pruned, self.keep_jobs)

    def stop(self) -> None:
        self.runner.shutdown(SHUTDOWN_SECONDS)
        self.store.close()

    def engine(self, name: str) -> Engine:
        return self.registry.engine(name)

    def originals(self, name: str) -> Originals:
        return Originals(self.registry.get(name).originals_dir)

    def collections(self) -> list[CollectionInfo]:
        return [_info(collection) for collection in self.registry.list()]

    def create(self, name: str) -> CollectionInfo:
        return _info(self.registry.create(name))

    def delete(self, name: str) -> None:
        with self._deleting:
            delete_collection(self.registry, name)

    async def upload(self, name: str, files: AsyncIterable[FilePart]) -> Job:
        with self.registry.using(name) as collection:
            batch = UploadBatch(
                collection.uploads_dir / secrets.token_hex(_TOKEN_BYTES), self.limits
            )
            try:
                # File I/O on the event loop, a body chunk (64 KiB or so) at a time: each write
                # lands in the page cache in microseconds, and a thread hop per chunk would cost
                # more than it saves.
                async for part in files:
                    await batch.add_async(part.file_name, part.chunks)
                if not batch.staged and not batch.refused:
                    raise InvalidRequestError(
                        f"the upload holds no files; send each file in a form field named "
                        f"'{FILES_FIELD}'"
                    )
                return self.runner.submit(
                    JobSpec(
                        collection=collection.name,
                        upload=batch.directory.name,
                        files=tuple(
                            JobFile(name=staged.name, size=staged.size, sha256=staged.sha256)
                            for staged in batch.staged
                        ),
                        refused=tuple(
                            FileResult(name=refusal.name, status="failed", reason=refusal.reason)
                            for refusal in batch.refused
                        ),
                    )
                )
            except BaseException:
                batch.discard()
                raise

    def remove(self, name: str, doc_id: str) -> Job:
        with self.registry.using(name) as collection:
            found = current_manifest(collection.index_dir)
            held = {document.doc_id for document in found[1].documents} if found else set()
            if doc_id not in held:
                raise NotFoundError(f"no document '{doc_id}' in the collection '{name}'")
            return self.runner.submit(JobSpec(collection=collection.name, remove=(doc_id,)))

    def job(self, job_id: str) -> Job:
        return self.store.get(job_id)

    def _busy(self, name: str) -> bool:
        return self.runner.busy(name)

    def _version_of(self, name: str) -> str | None:
        try:
            return self.registry.get(name).version()
        except CollectionError:
            return None


def delete_collection(registry: CollectionRegistry[Any], name: str) -> None:
    """Delete the collection, never under a writer of its index: the index lock is also what
    `chancery ingest --collection` holds, which a server's job runner cannot see."""
    collection = registry.get(name)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(writer_lock(collection.index_dir))
        except StoreError as exc:
            raise CollectionBusyError(
                f"the index of the collection '{name}' is being written; delete the collection "
                "when the writer has finished"
            ) from exc
        registry.delete(name)


def _info(collection: Collection) -> CollectionInfo:
    return collection_info(collection.name, collection.index_dir)
