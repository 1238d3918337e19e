"""Jobs: one at a time per collection, collections side by side, a bounded queue, records that
survive a crash (a real SIGKILL included)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.ids import make_doc_id
from ingest.models import FileReport, FileStatus
from service.jobs import (
    JOB_ID_PATTERN,
    FileResult,
    Job,
    JobFailedError,
    JobFile,
    JobNotFoundError,
    JobOutcome,
    JobRunner,
    JobSpec,
    JobState,
    JobStore,
    JobStoreError,
    QueueFullError,
    RunnerStoppedError,
)

REPO = Path(__file__).resolve().parents[1]
PATIENCE = 30.0
"""Seconds an event may take before a test gives up: only reached when the test fails."""


def spec(collection: str = "default", tag: str = "") -> JobSpec:
    return JobSpec(collection=collection, remove=(tag,) if tag else ())


def waited(event: threading.Event) -> None:
    if not event.wait(PATIENCE):
        raise AssertionError("an event the test waits for never came")


class Recorder:
    """Work that records what ran, can be held at a gate, and fails when told to."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ran: list[tuple[str, str]] = []
        self.active: dict[str, int] = {}
        self.most_active: dict[str, int] = {}
        self.started = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, job: JobSpec) -> JobOutcome:
        tag = job.remove[0] if job.remove else ""
        with self.lock:
            self.active[job.collection] = self.active.get(job.collection, 0) + 1
            self.most_active[job.collection] = max(
                self.most_active.get(job.collection, 0), self.active[job.collection]
            )
            self.ran.append((job.collection, tag))
        self.started.set()
        waited(self.gate)
        with self.lock:
            self.active[job.collection] -= 1
        return JobOutcome(
            results=(FileResult(name=f"{tag}.txt", status="ok", pages=1, chunks=2, doc_id=tag),),
            version=f"v-{tag}",
        )


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore(tmp_path / "jobs")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def runner(store: JobStore, recorder: Recorder) -> Iterator[JobRunner]:
    runner = JobRunner(store, recorder, max_queued=4, version_of=lambda _: "v-0")
    yield runner
    recorder.gate.set()
    runner.shutdown(timeout=PATIENCE)


def test_a_job_runs_and_its_record_says_what_it_did(
    runner: JobRunner, store: JobStore, tmp_path: Path
) -> None:
    refused = FileResult(name="fake.pdf", status="failed", reason="it is not a PDF")
    job_spec = JobSpec(
        collection="reports",
        upload="staging-1",
        files=(JobFile(name="a.txt", size=3, sha256="0" * 64),),
        remove=("a",),
        refused=(refused,),
    )
    job = runner.submit(job_spec)
    assert job.state is JobState.QUEUED
    assert job.results == (refused,)
    done = runner.wait(job.id, PATIENCE)
    assert done.state is JobState.SUCCEEDED
    assert done.version == "v-a"
    assert done.base_version == "v-0"
    assert [r.name for r in done.results] == ["fake.pdf", "a.txt"]
    assert done.results[1] == FileResult(name="a.txt", status="ok", pages=1, chunks=2, doc_id="a")
    assert done.started_at is not None and done.finished_at is not None
    assert done.created_at <= done.started_at <= done.finished_at
    assert done.error is None
    # The record is on disk, whole, for another process to read.
    assert JobStore(tmp_path / "jobs").get(job.id) == done
    assert (tmp_path / "jobs" / f"{job.id}.json").is_file()


def test_a_file_result_reads_an_ingest_report() -> None:
    ok = FileReport(Path("/up/Annual Report.pdf"), FileStatus.OK, pages=3, chunks=7)
    assert FileResult.from_report(ok) == FileResult(
        name="Annual Report.pdf",
        status="ok",
        pages=3,
        chunks=7,
        doc_id="annual-report~" + make_doc_id("Annual Report.pdf").split("~")[1],
    )
    failed = FileReport(Path("/up/scan.pdf"), FileStatus.FAILED, reason="it looks scanned")
    assert FileResult.from_report(failed) == FileResult(
        name="scan.pdf", status="failed", reason="it looks scanned"
    )


def test_job_ids_are_random_and_url_safe(store: JobStore) -> None:
    ids = {store.create(spec()).id for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(JOB_ID_PATTERN, job_id) for job_id in ids)


@pytest.mark.parametrize(
    "bad",
    ["../../etc/passwd", "/abs", "", "a" * 21, "a" * 23, "a.b" + "c" * 19, "a\x00" + "b" * 20],
)
def test_a_malformed_job_id_is_a_404_and_never_a_path(store: JobStore, bad: str) -> None:
    with pytest.raises(JobNotFoundError) as caught:
        store.get(bad)
    assert caught.value.status == 404


def test_an_unknown_job_id_is_a_404(store: JobStore) -> None:
    with pytest.raises(JobNotFoundError, match="no job"):
        store.get("A" * 22)


def test_an_unreadable_record_is_reported(store: JobStore) -> None:
    job = store.create(spec())
    (store.directory / f"{job.id}.json").write_text('{"id": ')
    with pytest.raises(JobStoreError, match="unreadable"):
        store.get(job.id)


def test_jobs_of_one_collection_run_one_at_a_time_in_order(
    runner: JobRunner, recorder: Recorder
) -> None:
    recorder.gate.clear()
    first = runner.submit(spec("reports", "0"))
    waited(recorder.started)
    rest = [runner.submit(spec("reports", str(n))) for n in range(1, 5)]
    assert runner.busy("reports")
    recorder.gate.set()
    for job in [first, *rest]:
        assert runner.wait(job.id, PATIENCE).state is JobState.SUCCEEDED
    assert recorder.ran == [("reports", str(n)) for n in range(5)]
    assert recorder.most_active["reports"] == 1
    assert not runner.busy("reports")


def test_two_collections_run_side_by_side(store: JobStore) -> None:
    started = {"alpha": threading.Event(), "beta": threading.Event()}

    def work(job: JobSpec) -> JobOutcome:
        started[job.collection].set()
        # Each waits for the other to have started: run one after the other, neither would.
        other = "beta" if job.collection == "alpha" else "alpha"
        if not started[other].wait(PATIENCE):
            raise JobFailedError(f"{other} never ran while {job.collection} did")
        return JobOutcome()

    runner = JobRunner(store, work)
    try:
        jobs = [runner.submit(spec("alpha")), runner.submit(spec("beta"))]
        finished = [runner.wait(job.id, PATIENCE) for job in jobs]
        assert [job.state for job in finished] == [JobState.SUCCEEDED] * 2, finished
    finally:
        runner.shutdown(timeout=PATIENCE)


def test_a_held_collection_does_not_hold_up_another(store: JobStore) -> None:
    gate, slow_started = threading.Event(), threading.Event()

    def work(job: JobSpec) -> JobOutcome:
        if job.collection == "slow":
            slow_started.set()
            waited(gate)
        return JobOutcome()

    runner = JobRunner(store, work)
    try:
        slow = runner.submit(spec("slow"))
        waited(slow_started)
        fast = runner.submit(spec("fast"))
        assert runner.wait(fast.id, PATIENCE).state is JobState.SUCCEEDED
        assert store.get(slow.id).state is JobState.RUNNING
        gate.set()
        assert runner.wait(slow.id, PATIENCE).state is JobState.SUCCEEDED
    finally:
        gate.set()
        runner.shutdown(timeout=PATIENCE)


def test_a_full_queue_answers_429_and_frees_up_as_jobs_start(
    runner: JobRunner, recorder: Recorder
) -> None:
    recorder.gate.clear()
    running = runner.submit(spec("reports", "running"))
    waited(recorder.started)  # now running, so no longer counted as waiting
    # All behind the running one: a job of another collection would start, and not wait.
    queued = [runner.submit(spec("reports", str(n))) for n in range(4)]
    assert runner.waiting() == 4
    with pytest.raises(QueueFullError) as caught:
        runner.submit(spec("third"))
    assert caught.value.status == 429
    assert "try again" in str(caught.value)
    recorder.gate.set()
    for job in [running, *queued]:
        assert runner.wait(job.id, PATIENCE).state is JobState.SUCCEEDED
    assert runner.waiting() == 0
    assert runner.wait(runner.submit(spec("third")).id, PATIENCE).state is JobState.SUCCEEDED


def test_a_refused_submit_leaves_no_record(
    runner: JobRunner, recorder: Recorder, store: JobStore
) -> None:
    recorder.gate.clear()
    runner.submit(spec())
    waited(recorder.started)
    for _ in range(4):
        runner.submit(spec())
    with pytest.raises(QueueFullError):
        runner.submit(spec())
    assert len(store.ids()) == 5


def test_concurrent_submits_past_the_limit_admit_exactly_the_limit(
    runner: JobRunner, recorder: Recorder, store: JobStore
) -> None:
    recorder.gate.clear()
    first = runner.submit(spec("reports", "first"))
    waited(recorder.started)
    threads = 12
    barrier = threading.Barrier(threads)
    admitted: list[Job] = []
    refused: list[QueueFullError] = []

    def submit(n: int) -> None:
        barrier.wait()
        try:
            admitted.append(runner.submit(spec("reports", str(n))))
        except QueueFullError as exc:
            refused.append(exc)

    workers = [threading.Thread(target=submit, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(admitted) == 4
    assert len(refused) == threads - 4
    assert len({job.id for job in admitted}) == 4
    recorder.gate.set()
    for job in [first, *admitted]:
        assert runner.wait(job.id, PATIENCE).state is JobState.SUCCEEDED
    assert sorted(store.ids()) == sorted(job.id for job in [first, *admitted])


def test_concurrent_submits_each_run_exactly_once(store: JobStore, recorder: Recorder) -> None:
    runner = JobRunner(store, recorder, max_queued=100)
    threads = 16
    barrier = threading.Barrier(threads)
    admitted: list[Job] = []

    def submit(n: int) -> None:
        barrier.wait()
        admitted.append(runner.submit(spec(f"c{n % 4}", str(n))))

    workers = [threading.Thread(target=submit, args=(n,)) for n in range(threads)]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        for job in admitted:
            assert runner.wait(job.id, PATIENCE).state is JobState.SUCCEEDED
    finally:
        runner.shutdown(timeout=PATIENCE)
    assert sorted(tag for _, tag in recorder.ran) == sorted(str(n) for n in range(threads))
    assert all(most == 1 for most in recorder.most_active.values())


def failing(error: Exception) -> Callable[[JobSpec], JobOutcome]:
    def work(_: JobSpec) -> JobOutcome:
        raise error

    return work


class StatusError(Exception):
    status = 409


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (JobFailedError("another process is writing the index; try again"), "another process"),
        (StatusError("the collection was deleted"), "the collection was deleted"),
        (ZeroDivisionError("division by zero"), "internal error: ZeroDivisionError"),
    ],
)
def test_a_failing_job_records_why(store: JobStore, error: Exception, message: str) -> None:
    runner = JobRunner(store, failing(error))
    try:
        job = runner.wait(runner.submit(spec()).id, PATIENCE)
    finally:
        runner.shutdown(timeout=PATIENCE)
    assert job.state is JobState.FAILED
    assert job.error is not None and job.error.startswith(message)
    assert job.finished_at is not None


def test_a_failed_job_does_not_stop_the_next_one(store: JobStore) -> None:
    def work(job: JobSpec) -> JobOutcome:
        if job.remove == ("bad",):
            raise JobFailedError("bad")
        return JobOutcome(version="v-good")

    runner = JobRunner(store, work)
    try:
        bad, good = runner.submit(spec(tag="bad")), runner.submit(spec(tag="good"))
        assert runner.wait(bad.id, PATIENCE).state is JobState.FAILED
        assert runner.wait(good.id, PATIENCE).version == "v-good"
    finally:
        runner.shutdown(timeout=PATIENCE)


def test_shutdown_fails_queued_jobs_and_lets_the_running_one_finish(
    store: JobStore, recorder: Recorder
) -> None:
    discarded: list[JobSpec] = []
    marked = threading.Event()

    def discard(job: JobSpec) -> None:
        discarded.append(job)
        marked.set()

    runner = JobRunner(store, recorder, version_of=lambda _: "v-7", discard=discard)
    recorder.gate.clear()
    running = runner.submit(spec(tag="running"))
    waited(recorder.started)
    queued = runner.submit(spec(tag="queued"))
    stopper = threading.Thread(target=runner.shutdown, kwargs={"timeout": PATIENCE})
    stopper.start()
    waited(marked)
    with pytest.raises(RunnerStoppedError) as caught:
        runner.submit(spec())
    assert caught.value.status == 503
    recorder.gate.set()
    stopper.join()
    assert store.get(running.id).state is JobState.SUCCEEDED
    never = store.get(queued.id)
    assert never.state is JobState.FAILED
    assert never.error is not None and "unchanged (version v-7)" in never.error
    assert discarded == [queued.spec]
    assert [tag for _, tag in recorder.ran] == ["running"]


def test_listeners_hear_of_each_job_that_ends_with_its_final_record(store: JobStore) -> None:
    heard: list[Job] = []
    outcomes = iter([None, JobFailedError("the file is damaged")])

    def work(job: JobSpec) -> JobOutcome:
        error = next(outcomes)
        if error is not None:
            raise error
        return JobOutcome(
            results=(
                FileResult(name="a.txt", status="ok", pages=3, chunks=4, doc_id="a"),
                FileResult(name="b.txt", status="failed", reason="empty", pages=2),
            ),
            version="v-1",
        )

    def broken(_: Job) -> None:
        raise RuntimeError("a listener with a bug")

    runner = JobRunner(store, work)
    runner.on_finish(broken)
    runner.on_finish(heard.append)
    try:
        succeeded = runner.wait(runner.submit(spec(tag="a")).id, PATIENCE)
        failed = runner.wait(runner.submit(spec(tag="b")).id, PATIENCE)
    finally:
        runner.shutdown(PATIENCE)
    # Told once each, once the record is written; a failing listener changes nothing.
    assert heard == [succeeded, failed] == [store.get(succeeded.id), store.get(failed.id)]
    assert [job.state for job in heard] == [JobState.SUCCEEDED, JobState.FAILED]
    assert [job.pages_ingested for job in heard] == [3, 0]


def test_listeners_hear_of_queued_jobs_failed_at_shutdown(
    store: JobStore, recorder: Recorder
) -> None:
    heard: list[Job] = []
    discarded = threading.Event()
    runner = JobRunner(store, recorder, discard=lambda _: discarded.set())
    runner.on_finish(heard.append)
    recorder.gate.clear()
    running = runner.submit(spec(tag="running"))
    waited(recorder.started)
    queued = runner.submit(spec(tag="queued"))
    stopper = threading.Thread(target=runner.shutdown, kwargs={"timeout": PATIENCE})
    stopper.start()
    waited(discarded)
    recorder.gate.set()
    stopper.join()
    assert sorted((job.id, job.state) for job in heard) == sorted(
        [(running.id, JobState.SUCCEEDED), (queued.id, JobState.FAILED)]
    )


# After a crash


def write_left_over(store: JobStore, state: JobState, base_version: str | None) -> Job:
    """A job of a process that has stopped (its store closed) in `state`."""
    stopped = JobStore(store.directory)
    job = stopped.create(spec("reports"))
    if state is not JobState.QUEUED:
        job = job.model_copy(
            update={"state": state, "started_at": datetime.now(UTC), "base_version": base_version}
        )
        stopped.put(job)
    stopped.close()
    return job


def test_recover_fails_what_a_stopped_process_left_running_or_queued(store: JobStore) -> None:
    running = write_left_over(store, JobState.RUNNING, "v-1")
    switched = write_left_over(store, JobState.RUNNING, "v-1")
    queued = write_left_over(store, JobState.QUEUED, None)
    done = write_left_over(store, JobState.SUCCEEDED, "v-1")
    (store.directory / ".tmp-half-written").write_text('{"id": "x')
    versions = {"reports": "v-1"}

    def version_of(collection: str) -> str | None:
        return versions[collection]

    # `switched` stopped after the index had switched: the collection moved on.
    store.put(switched.model_copy(update={"base_version": "v-0"}))
    marked = store.recover(version_of)
    assert {job.id for job in marked} == {running.id, switched.id, queued.id}
    after = {job.id: job for job in JobStore(store.directory).all()}
    assert after[running.id].state is JobState.FAILED
    assert after[running.id].error == (
        "the server stopped while the job ran; the collection is unchanged (version v-1); "
        "upload the files again"
    )
    assert "after the collection had switched to version v-1" in str(after[switched.id].error)
    assert str(after[queued.id].error).startswith("the server stopped before the job ran")
    assert after[done.id] == done
    assert not list(store.directory.glob(".tmp-*"))
    assert store.recover(version_of) == []


def test_recover_says_when_there_was_no_index_yet(store: JobStore) -> None:
    write_left_over(store, JobState.RUNNING, None)
    (job,) = store.recover(lambda _: None)
    assert job.error is not None and "unchanged (no index yet)" in job.error


CHILD = """
import sys, threading
from pathlib import Path
from service.jobs import JobOutcome, JobRunner, JobSpec, JobStore

started = threading.Event()

def work(spec):
    started.set()
    threading.Event().wait()  # holds the job until the process is killed
    return JobOutcome()

runner = JobRunner(JobStore(Path(sys.argv[1])), work, version_of=lambda _: "v-1")
running = runner.submit(JobSpec(collection="reports"))
started.wait()
queued = runner.submit(JobSpec(collection="reports"))
print(running.id, queued.id, flush=True)
threading.Event().wait()
"""


def test_a_job_killed_with_sigkill_is_failed_after_restart(tmp_path: Path) -> None:
    directory = tmp_path / "jobs"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # written once one job runs and the other waits
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert line, "the child process ended before it started its jobs"
    running_id, queued_id = line.split()
    store = JobStore(directory)
    assert store.get(running_id).state is JobState.RUNNING
    assert store.get(queued_id).state is JobState.QUEUED
    store.recover(lambda _: "v-1")
    running, queued = store.get(running_id), store.get(queued_id)
    assert running.state is JobState.FAILED
    assert running.error is not None
    assert "stopped while the job ran; the collection is unchanged (version v-1)" in running.error
    assert queued.state is JobState.FAILED
    assert queued.error is not None and "before the job ran" in queued.error


# Replicas: several processes over one data root


def test_recover_leaves_the_jobs_of_a_live_replica_alone(tmp_path: Path) -> None:
    directory = tmp_path / "jobs"
    replica = JobStore(directory)
    running = replica.create(spec("reports"))
    replica.put(running.model_copy(update={"state": JobState.RUNNING, "base_version": "v-1"}))
    queued = replica.create(spec("reports"))
    stopped = write_left_over(replica, JobState.RUNNING, "v-1")
    # A half-written record of the live replica, and one of the stopped process.
    (directory / f".tmp-{replica.owner}+{queued.id}+0000").write_text('{"id": "x')
    (directory / f".tmp-{stopped.owner}+{stopped.id}+0000").write_text('{"id": "y')

    starting = JobStore(directory)  # another replica, starting while the first one works
    marked = starting.recover(lambda _: "v-1")
    assert [job.id for job in marked] == [stopped.id]
    assert replica.get(running.id).state is JobState.RUNNING
    assert replica.get(queued.id).state is JobState.QUEUED
    assert [p.name for p in directory.glob(".tmp-*")] == [f".tmp-{replica.owner}+{queued.id}+0000"]
    assert {p.name for p in (directory / ".owners").iterdir()} == {f"{replica.owner}.lock"}

    replica.close()  # the first replica stops without finishing them
    later = JobStore(directory)
    assert {job.id for job in later.recover(lambda _: "v-1")} == {running.id, queued.id}
    assert later.get(running.id).state is JobState.FAILED
    assert not list((directory / ".owners").iterdir())


def test_a_record_names_its_owner_and_the_owner_holds_its_lease(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs")
    job = store.create(spec())
    assert job.owner == store.owner == JobStore(tmp_path / "jobs").get(job.id).owner
    assert re.fullmatch(rf"[A-Za-z0-9.-]+-{os.getpid()}-[0-9a-f]{{8}}", store.owner)
    assert (tmp_path / "jobs" / ".owners" / f"{store.owner}.lock").is_file()
    assert store.recover(lambda _: None) == []  # its own live jobs are not left-overs
    store.close()
    assert not (tmp_path / "jobs" / ".owners" / f"{store.owner}.lock").exists()


def test_records_without_an_owner_count_as_left_over(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs")
    job = store.create(spec())
    store.put(job.model_copy(update={"owner": None}))
    assert [marked.id for marked in JobStore(tmp_path / "jobs").recover(lambda _: None)] == [job.id]


def test_prune_removes_only_records_of_jobs_that_ended_before_the_cutoff(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs")
    now = datetime.now(UTC)

    def ended(state: JobState, days_ago: float) -> Job:
        job = store.create(spec())
        job = job.model_copy(update={"state": state, "finished_at": now - timedelta(days=days_ago)})
        store.put(job)
        return job

    old_success, old_failure = ended(JobState.SUCCEEDED, 40), ended(JobState.FAILED, 31)
    recent = ended(JobState.SUCCEEDED, 29)
    queued = store.create(spec())  # waiting, however old, stays
    running = store.create(spec())
    store.put(running.model_copy(update={"state": JobState.RUNNING}))
    (store.directory / "not-a-job.json").write_text("{}")

    assert store.prune(now - timedelta(days=30)) == 2
    assert {job.id for job in store.all()} == {recent.id, queued.id, running.id}
    for gone in (old_success, old_failure):
        with pytest.raises(JobNotFoundError):
            store.get(gone.id)
    assert (store.directory / "not-a-job.json").exists()
    assert store.prune(now - timedelta(days=30)) == 0
