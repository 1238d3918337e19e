"""The audit log: durable before acknowledged (a real SIGKILL), append-only, monthly files read as
one, text left out on request, safe with many writers and a reader."""

from __future__ import annotations

import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from service.audit import (
    AuditCitation,
    AuditError,
    AuditEvent,
    AuditLog,
    audit_files,
    read_audit,
)

START = datetime(2025, 5, 31, 23, 59, 58, tzinfo=UTC)


def ticking(
    start: datetime = START, step: timedelta = timedelta(seconds=1)
) -> Callable[[], datetime]:
    """A clock that moves `step` at every reading: deterministic, and crosses a month."""
    moments: Iterator[datetime] = (start + n * step for n in range(10**9))
    lock = threading.Lock()

    def now() -> datetime:
        with lock:
            return next(moments)

    return now


def ask(request_id: str, **changes: object) -> AuditEvent:
    fields: dict[str, object] = {
        "method": "POST",
        "route": "/v1/collections/{name}/ask",
        "status": 200,
        "request_id": request_id,
        "key": "analyst",
        "client": "127.0.0.1",
        "collection": "serbia",
        "question": "How does the strategy treat Kosovo?",
        "answerer": "extractive",
        "answer": "It does not recognise it. [1]",
        "citations": (AuditCitation(doc="strategy.pdf", page=3, quote="does not recognise"),),
        "abstained": False,
        "index_version": "v-1",
        "latency_ms": 12.5,
    }
    fields.update(changes)
    return AuditEvent.model_validate(fields)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[AuditLog]:
    audit = AuditLog(tmp_path / "audit", clock=ticking())
    yield audit
    audit.close()


def test_a_record_reads_back_as_written(log: AuditLog) -> None:
    written = log.record(ask("r1"))
    assert written.time == START
    (found,) = log.query()
    assert found == written
    assert found.citations[0].quote == "does not recognise"
    assert found.abstained is False


def test_uploads_and_deletions_keep_files_documents_and_job(log: AuditLog) -> None:
    upload = AuditEvent(
        method="POST",
        route="/v1/collections/{name}/documents",
        status=202,
        collection="serbia",
        files=("a.pdf", "b.docx"),
        job_id="j" * 22,
    )
    deletion = AuditEvent(
        method="DELETE",
        route="/v1/collections/{name}/documents/{doc_id}",
        status=202,
        collection="serbia",
        doc_ids=("a.pdf",),
        job_id="k" * 22,
    )
    log.record(upload)
    log.record(deletion)
    first, second = log.query()
    assert (first.files, first.job_id, first.abstained) == (("a.pdf", "b.docx"), "j" * 22, None)
    assert (second.doc_ids, second.job_id) == (("a.pdf",), "k" * 22)


def test_without_text_only_metadata_is_stored(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit", store_text=False, clock=ticking())
    audit.record(ask("r1"))
    audit.close()
    (found,) = read_audit(tmp_path / "audit")
    assert found.question is None and found.answer is None
    assert found.citations == (AuditCitation(doc="strategy.pdf", page=3, quote=None),)
    assert (found.key, found.collection, found.request_id) == ("analyst", "serbia", "r1")
    (path,) = (path for _, path in audit_files(tmp_path / "audit"))
    raw = path.read_bytes() + b"".join(p.read_bytes() for p in path.parent.glob("*-wal"))
    assert b"Kosovo" not in raw and b"recognise" not in raw


def test_the_log_refuses_updates_and_deletions(log: AuditLog) -> None:
    log.record(ask("r1"))
    ((_, path),) = audit_files(log.directory)
    with sqlite3.connect(path) as db:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("UPDATE audit SET question = 'edited'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("DELETE FROM audit")
    assert log.query()[0].question == "How does the strategy treat Kosovo?"


def test_files_are_private(log: AuditLog) -> None:
    log.record(ask("r1"))
    ((_, path),) = audit_files(log.directory)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.directory.stat().st_mode) == 0o700


def test_records_go_to_the_file_of_their_month_and_reads_span_them(log: AuditLog) -> None:
    for n in range(5):  # 23:59:58, 23:59:59 in May; 00:00:00 ... in June
        log.record(ask(f"r{n}"))
    assert sorted(month for month, _ in audit_files(log.directory)) == ["2025-05", "2025-06"]
    assert [r.request_id for r in log.query()] == ["r0", "r1", "r2", "r3", "r4"]
    june = datetime(2025, 6, 1, tzinfo=UTC)
    assert [r.request_id for r in log.query(since=june)] == ["r2", "r3", "r4"]
    assert [r.request_id for r in log.query(limit=3)] == ["r2", "r3", "r4"]
    assert [r.request_id for r in log.query(limit=4)] == ["r1", "r2", "r3", "r4"]


def test_queries_filter_by_collection_and_key(log: AuditLog) -> None:
    log.record(ask("r1"))
    log.record(ask("r2", collection="kosovo"))
    log.record(ask("r3", key="ops"))
    log.record(ask("r4", key=None))
    assert [r.request_id for r in log.query(collection="kosovo")] == ["r2"]
    assert [r.request_id for r in log.query(key="ops")] == ["r3"]
    assert [r.request_id for r in log.query(key="analyst", collection="serbia")] == ["r1"]


def test_reading_a_missing_folder_finds_nothing(tmp_path: Path) -> None:
    assert read_audit(tmp_path / "nothing") == []
    assert not (tmp_path / "nothing").exists()


def test_many_threads_record_each_record_once_while_another_reads(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit")
    reads: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            reads.append(len(read_audit(tmp_path / "audit", limit=10_000)))

    watching = threading.Thread(target=reader)
    watching.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: log.record(ask(f"r{n}")), range(200)))
    finally:
        stop.set()
        watching.join()
    found = [str(record.request_id) for record in log.query(limit=10_000)]
    assert sorted(found) == sorted(f"r{n}" for n in range(200))
    assert reads == sorted(reads)  # a reader never sees a record vanish
    log.close()


def test_record_async_does_not_hold_the_event_loop(log: AuditLog) -> None:
    async def main() -> None:
        async with anyio.create_task_group() as group:
            for n in range(10):
                group.start_soon(log.record_async, ask(f"r{n}"))

    anyio.run(main)
    assert len(log.query()) == 10


def test_a_closed_log_refuses_records(log: AuditLog) -> None:
    log.close()
    with pytest.raises(AuditError, match="closed"):
        log.record(ask("r1"))


def test_a_failed_write_is_an_error_for_the_caller(tmp_path: Path) -> None:
    blocked = tmp_path / "audit"
    blocked.write_text("a file where the folder should be")
    log = AuditLog(blocked)
    with pytest.raises(AuditError, match="could not be written"):
        log.record(ask("r1"))


_CHILD = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from service.audit import AuditEvent, AuditLog

    log = AuditLog(Path(sys.argv[1]))
    said = threading.Lock()

    def work(thread):
        for n in range(1_000_000):
            request_id = f"t{thread}-{n}"
            log.record(AuditEvent(method="POST", route="/v1/ask", status=200,
                                  request_id=request_id, question="q"))
            with said:
                print(request_id, flush=True)

    for thread in range(4):
        threading.Thread(target=work, args=(thread,)).start()
    """
)


def test_every_acknowledged_record_survives_a_sigkill(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(directory)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    acknowledged: list[str] = []
    try:
        while len(acknowledged) < 300:
            line = child.stdout.readline()
            assert line, "the writer ended before it was killed"
            acknowledged.append(line.strip())
    finally:
        child.send_signal(signal.SIGKILL)
        # Acknowledgements already in the pipe were printed after their record was in.
        acknowledged.extend(line.strip() for line in child.stdout if line.endswith("\n"))
        child.wait()
    assert child.returncode == -signal.SIGKILL
    found = {record.request_id for record in read_audit(directory, limit=10**7)}
    assert set(acknowledged) <= found
    ((_, path),) = audit_files(directory)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
