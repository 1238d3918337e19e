"""Ingest jobs: recorded on disk, run one at a time per collection, failed honestly after a crash.

Each job is one JSON file, `DIRECTORY/<id>.json`, rewritten whole at every change of state (a
temporary file, fsynced, renamed over the old one), so a reader sees the record before or after
a change, never half of one. The record is written before `submit` returns: a client that was told
a job id can always look it up, even after a restart.

A process killed while jobs are queued or running leaves their records saying so; `recover`, run
at startup before any job is submitted, marks them failed and says what became of the collection.
Several servers (replicas) may share one data root, so a record names the process that owns it,
and that process holds a lock on a file of its own (`.owners/<owner>.lock`) while it lives: a
job is abandoned only when its owner's lock can be taken, never because another replica started.
The index writer switches versions atomically, so the collection holds either the version it had
when the job started or the one the job wrote; the record of the job's start (`base_version`)
tells which.

Jobs of one collection run in the order they were submitted, on a worker thread of that
collection, which ends when the collection's queue is empty; collections do not wait for each
other. The work itself is injected (`Work`): tests pass a fake, the service passes the ingest.
Whoever counts jobs (the service's metrics) asks to be told of each one that ends (`on_finish`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import secrets
import socket
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from index.durable import fsync_dir
from ingest.ids import make_doc_id, readable_name
from ingest.models import FileReport, FileStatus
from service.errors import ChanceryError

log = logging.getLogger("chancery")

JOB_ID_PATTERN = r"^[A-Za-z0-9_-]{22}$"
"""`secrets.token_urlsafe(16)`: 128 random bits, URL- and file-name-safe."""
_JOB_ID = re.compile(JOB_ID_PATTERN)
_ID_BYTES = 16
_RECORD = ".json"
_TEMPORARY = ".tmp-"
_OWNERS = ".owners"
_LEASE = ".lock"
_OWNER = re.compile(r"^[A-Za-z0-9._-]{1,120}$")


class JobError(ChanceryError):
    status = 400
    exit_code = 1


class JobNotFoundError(JobError):
    status = 404


class QueueFullError(JobError):
    status = 429


class RunnerStoppedError(JobError):
    status = 503


class JobStoreError(JobError):
    """A job record on disk cannot be read."""

    status = 500


class JobFailedError(Exception):
    """Raised by the work for a failure the client can act on: its message becomes the job's
    error as it is. Any other exception is reported as an internal error."""


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


_FINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED})


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FileResult(_Record):
    """One file of a job, with the status and reason `chancery ingest` would print for it."""

    name: str
    status: Literal["ok", "failed", "skipped"]
    reason: str = ""
    pages: int = 0
    chunks: int = 0
    doc_id: str | None = None
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_report(cls, report: FileReport) -> FileResult:
        """The result of a file as `ingest_files` reported it; ingested files get their id."""
        name = report.path.name
        return cls(
            name=readable_name(name),
            status=report.status.value,
            reason=report.reason,
            pages=report.pages,
            chunks=report.chunks,
            doc_id=make_doc_id(name) if report.status is FileStatus.OK else None,
            warnings=report.warnings,
        )


class JobFile(_Record):
    """A file staged for the job, by its document file name."""

    name: str
    size: int
    sha256: str


class JobSpec(_Record):
    """What a job is to do: add the staged files of `upload`, remove the `remove` doc ids."""

    collection: str
    upload: str | None = None
    """The staging folder of the files (a name inside the collection's uploads folder)."""
    files: tuple[JobFile, ...] = ()
    remove: tuple[str, ...] = ()
    refused: tuple[FileResult, ...] = ()
    """Files refused on arrival (type, name); reported with the job's results."""


class JobOutcome(_Record):
    results: tuple[FileResult, ...] = ()
    version: str | None = None
    """The index version the job wrote; None when it changed nothing (every file failed, or
    none was new)."""


class Job(_Record):
    id: str
    state: JobState
    spec: JobSpec
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    base_version: str | None = None
    """The collection's index version when the job started."""
    version: str | None = None
    results: tuple[FileResult, ...] = ()
    error: str | None = None
    owner: str | None = None
    """The process that queued the job (`JobStore.owner`); None in records written before
    replicas, which `recover` treats as abandoned."""

    @property
    def pages_ingested(self) -> int:
        """The pages of the files the job added to the index."""
        return sum(result.pages for result in self.results if result.status == "ok")


Work = Callable[[JobSpec], JobOutcome]
Listener = Callable[[Job], None]
"""Told of each job that ends (succeeded or failed), with its final record."""
VersionOf = Callable[[str], str | None]
"""The index version a collection serves now (None: no index yet); it must not raise."""


class JobStore:
    """Job records in `directory`, one file each."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # Host and pid for whoever reads a record; the random part because a pid is reused.
        host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:60] or "host"
        self.owner = f"{host}-{os.getpid()}-{secrets.token_hex(4)}"
        self._lease: int | None = None
        self._leasing = threading.Lock()

    def create(self, spec: JobSpec) -> Job:
        self._hold_lease()
        job = Job(
            id=secrets.token_urlsafe(_ID_BYTES),
            state=JobState.QUEUED,
            spec=spec,
            created_at=_now(),
            results=spec.refused,
            owner=self.owner,
        )
        self.put(job)
        return job

    def close(self) -> None:
        """Give up this process's lease: its unfinished jobs count as abandoned from now on."""
        with self._leasing:
            if self._lease is not None:
                os.close(self._lease)  # closing releases the lock
                self._lease = None
                (self.directory / _OWNERS / f"{self.owner}{_LEASE}").unlink(missing_ok=True)

    def _hold_lease(self) -> None:
        """Lock this process's owner file, before any record names it, for as long as it lives
        (the kernel lets go when the process dies, however it dies)."""
        with self._leasing:
            if self._lease is not None:
                return
            owners = self.directory / _OWNERS
            owners.mkdir(parents=True, exist_ok=True)
            path = owners / f"{self.owner}{_LEASE}"
            while True:
                descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    # A replica's `recover` may have found the new file unlocked and removed it
                    # between our open and our lock; a lease must be on the file others see.
                    if _same_file(descriptor, path):
                        self._lease = descriptor
                        return
                except BaseException:
                    os.close(descriptor)
                    raise
                os.close(descriptor)

    def _owner_alive(self, owner: str | None) -> bool:
        """Whether the process that owns a record still holds its lease."""
        if owner is None or not _OWNER.fullmatch(owner):
            return False
        if owner == self.owner:
            return self._lease is not None
        path = self.directory / _OWNERS / f"{owner}{_LEASE}"
        try:
            descriptor = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(descriptor)
        return False

    def get(self, job_id: str) -> Job:
        """The job; JobNotFoundError for any id that is not one (never a path outside)."""
        if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
            raise JobNotFoundError(_not_found(job_id))
        path = self.directory / f"{job_id}{_RECORD}"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise JobNotFoundError(_not_found(job_id)) from exc
        try:
            return Job.model_validate_json(text)
        except ValidationError as exc:
            raise JobStoreError(f"the record of job {job_id} in {path} is unreadable") from exc

    def put(self, job: Job) -> None:
        """Write the record atomically and durably."""
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"{job.id}{_RECORD}"
        temporary = self.directory / f"{_TEMPORARY}{self.owner}+{job.id}+{secrets.token_hex(4)}"
        try:
            with temporary.open("w", encoding="utf-8") as handle:
                handle.write(job.model_dump_json(indent=2))
                handle.flush()
                os.fsync(handle.fileno())
            temporary.replace(target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        fsync_dir(self.directory)

    def ids(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(
            path.stem for path in self.directory.glob(f"*{_RECORD}") if _JOB_ID.fullmatch(path.stem)
        )

    def all(self) -> list[Job]:
        """Every readable job, oldest first."""
        jobs = []
        for job_id in self.ids():
            try:
                jobs.append(self.get(job_id))
            except JobNotFoundError:
                continue  # removed since it was listed
            except JobStoreError as exc:
                # Records are replaced atomically, so only damage from outside gets here; `get`
                # keeps saying so for that id.
                log.warning("%s", exc)
        return sorted(jobs, key=lambda job: job.created_at)

    def recover(self, version_of: VersionOf) -> list[Job]:
        """Mark the jobs a stopped process left queued or running as failed; call at startup.

        Jobs of processes still running (replicas over the same data root) are left alone.
        Returns the jobs it marked. Temporary files of writes cut short are removed.
        """
        if self.directory.is_dir():
            # Only a stopped process's temporary files: a live replica may be writing its own.
            for leftover in self.directory.glob(f"{_TEMPORARY}*"):
                if not self._owner_alive(_temporary_owner(leftover.name)):
                    leftover.unlink(missing_ok=True)
        marked = []
        alive: dict[str | None, bool] = {}
        for job in self.all():
            if job.state in _FINAL:
                continue
            if job.owner not in alive:
                alive[job.owner] = self._owner_alive(job.owner)
            if alive[job.owner]:
                continue
            failed = job.model_copy(
                update={
                    "state": JobState.FAILED,
                    "finished_at": _now(),
                    "error": _stopped(job, version_of(job.spec.collection)),
                }
            )
            self.put(failed)
            marked.append(failed)
        self._remove_dead_leases()
        return marked

    def prune(self, finished_before: datetime) -> int:
        """Remove the records of jobs that ended before `finished_before`; how many went.

        Queued and running jobs stay whatever their age, and so does an unreadable record (it
        is evidence of damage to look at, and `all` already says so).
        """
        removed = 0
        for job in self.all():
            ended = job.finished_at
            if job.state in _FINAL and ended is not None and ended < finished_before:
                (self.directory / f"{job.id}{_RECORD}").unlink(missing_ok=True)
                removed += 1
        if removed:
            fsync_dir(self.directory)
        return removed

    def _remove_dead_leases(self) -> None:
        owners = self.directory / _OWNERS
        if not owners.is_dir():
            return
        for lease in owners.glob(f"*{_LEASE}"):
            owner = lease.name.removesuffix(_LEASE)
            if not self._owner_alive(owner):
                # A process that starts right now locks a file it has just created, never this
                # one, so removing it cannot take a live lease away.
                with contextlib.suppress(FileNotFoundError):
                    lease.unlink()


def _temporary_owner(name: str) -> str | None:
    """The owner in a temporary record's name (`.tmp-<owner>+<job id>+<random>`), or None."""
    owner, separator, _ = name.removeprefix(_TEMPORARY).partition("+")
    return owner if separator else None


def _same_file(descriptor: int, path: Path) -> bool:
    try:
        named = path.stat()
    except FileNotFoundError:
        return False
    opened = os.fstat(descriptor)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _stopped(job: Job, version: str | None) -> str:
    shown = f"version {version}" if version else "no index yet"
    if job.state is JobState.QUEUED:
        return (
            f"the server stopped before the job ran; the collection is unchanged ({shown}); "
            f"{_again(job.spec)}"
        )
    if version == job.base_version:
        return (
            f"the server stopped while the job ran; the collection is unchanged ({shown}); "
            f"{_again(job.spec)}"
        )
    return (
        f"the server stopped while the job ran, after the collection had switched to {shown}; "
        "the results of its files were lost (list the documents to see what it holds)"
    )


class JobRunner:
    """Runs jobs: one at a time and in order per collection, collections side by side.

    At most `max_queued` jobs wait (over all collections; running ones are not counted); a
    submit beyond that raises QueueFullError. `discard` is called with the spec of every job
    that will never run (queued at shutdown), so its staged files can be removed. Listeners
    (`on_finish`) are told of each job that ends, once its record is written.
    """

    def __init__(
        self,
        store: JobStore,
        work: Work,
        *,
        max_queued: int = 32,
        version_of: VersionOf | None = None,
        discard: Callable[[JobSpec], None] | None = None,
    ) -> None:
        if max_queued < 1:
            raise ValueError(f"max_queued must be at least 1, not {max_queued}")
        self._store = store
        self._work = work
        self._max_queued = max_queued
        self._version_of = version_of or _no_version
        self._discard = discard
        self._lock = threading.Lock()
        self._finished = threading.Condition(self._lock)
        self._queues: dict[str, deque[Job]] = {}
        self._running: dict[str, str] = {}
        self._workers: dict[str, threading.Thread] = {}
        self._stopping = False
        self._listeners: list[Listener] = []

    def on_finish(self, listener: Listener) -> None:
        """Call `listener` with each job that ends from now on, on the thread that ended it
        (a collection's worker, or the one shutting down); it must not block for long. An
        exception it raises is logged, and the job stays as it ended."""
        with self._lock:
            self._listeners.append(listener)

    def submit(self, spec: JobSpec) -> Job:
        """Record the job as queued and queue it; the record exists when this returns."""
        with self._lock:
            if self._stopping:
                raise RunnerStoppedError("the server is shutting down; submit the job again later")
            waiting = sum(len(queue) for queue in self._queues.values())
            if waiting >= self._max_queued:
                raise QueueFullError(
                    f"{waiting} jobs are waiting, as many as this server queues; try again when "
                    "one has finished"
                )
            # Written under the lock so that no job runs, or is counted, before its record exists.
            job = self._store.create(spec)
            self._queues.setdefault(spec.collection, deque()).append(job)
            if spec.collection not in self._workers:
                worker = threading.Thread(
                    target=self._serve,
                    args=(spec.collection,),
                    name=f"chancery-jobs-{spec.collection}",
                    daemon=True,
                )
                self._workers[spec.collection] = worker
                worker.start()
            return job

    def busy(self, collection: str) -> bool:
        """Whether jobs of `collection` are queued or running."""
        with self._lock:
            return bool(self._queues.get(collection)) or collection in self._running

    def waiting(self) -> int:
        """How many jobs are queued, over all collections."""
        with self._lock:
            return sum(len(queue) for queue in self._queues.values())

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """The job once it has finished, or as it stands when `timeout` seconds have passed."""
        with self._finished:
            # Running until the worker lets go, so that `busy` is false once this returns.
            self._finished.wait_for(
                lambda: (
                    job_id not in self._running.values() and self._store.get(job_id).state in _FINAL
                ),
                timeout,
            )
        return self._store.get(job_id)

    def shutdown(self, timeout: float | None = None) -> None:
        """Refuse new jobs, fail the queued ones, and wait for the running ones to end."""
        with self._lock:
            self._stopping = True
            never_run = [job for queue in self._queues.values() for job in queue]
            for queue in self._queues.values():
                queue.clear()
            workers = list(self._workers.values())
        for job in never_run:
            version = self._version_of(job.spec.collection)
            shown = f"version {version}" if version else "no index yet"
            self._finish(
                job,
                error=f"the server shut down before the job ran; the collection is unchanged "
                f"({shown}); {_again(job.spec)}",
            )
            if self._discard is not None:
                self._discard(job.spec)
        for worker in workers:
            worker.join(timeout)

    def _serve(self, collection: str) -> None:
        while True:
            with self._lock:
                queue = self._queues.get(collection)
                if not queue:
                    # Under the lock: a submit either came before and is in the queue, or comes
                    # after and finds no worker, so it starts one.
                    self._queues.pop(collection, None)
                    del self._workers[collection]
                    return
                job = queue.popleft()
                self._running[collection] = job.id
            try:
                self._run(job)
            except Exception:
                # Only the record could not be written; at the next start `recover` fails the job.
                log.exception("job %s of collection %s could not be recorded", job.id, collection)
            finally:
                with self._lock:
                    del self._running[collection]
                    self._finished.notify_all()

    def _run(self, job: Job) -> None:
        started = job.model_copy(
            update={
                "state": JobState.RUNNING,
                "started_at": _now(),
                "base_version": self._version_of(job.spec.collection),
            }
        )
        self._store.put(started)
        try:
            outcome = self._work(job.spec)
        except JobFailedError as exc:
            self._finish(started, error=str(exc))
        except Exception as exc:
            log.exception("job %s of collection %s failed", job.id, job.spec.collection)
            self._finish(started, error=_internal(exc))
        else:
            finished = started.model_copy(
                update={
                    "state": JobState.SUCCEEDED,
                    "finished_at": _now(),
                    "version": outcome.version,
                    "results": (*started.results, *outcome.results),
                }
            )
            self._store.put(finished)
            self._ended(finished)

    def _finish(self, job: Job, *, error: str) -> None:
        failed = job.model_copy(
            update={"state": JobState.FAILED, "finished_at": _now(), "error": error}
        )
        self._store.put(failed)
        self._ended(failed)
        with self._finished:
            self._finished.notify_all()

    def _ended(self, job: Job) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(job)
            except Exception:
                log.exception("a listener to job %s failed", job.id)


def _again(spec: JobSpec) -> str:
    return "upload the files again" if spec.files or not spec.remove else "delete them again"


def _internal(exc: Exception) -> str:
    # A ChanceryError (anything with an HTTP status) says what to do; anything else is a bug.
    if getattr(exc, "status", None) is not None:
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"


def _not_found(job_id: object) -> str:
    shown = repr(job_id) if isinstance(job_id, str) and len(job_id) <= 40 else "that id"
    return f"no job {shown}"


def _no_version(_: str) -> str | None:
    return None


def _now() -> datetime:
    return datetime.now(UTC)
