"""The audit log: who asked what, what was answered from where; every upload and deletion.

Records go to SQLite files in `DATA/audit/`, one per calendar month (UTC) of the record's time:
`audit-2025-06.sqlite3`. A month's file is complete once the month is over, so it can be copied,
archived or removed whole while the server runs; `query` reads across all the files present.
Rotation by month rather than by size: a file's name then says what it holds, and a SQLite file
is never renamed under its readers.

`record` returns only once the record is committed with `synchronous=FULL` in WAL mode: the
write-ahead log is fsynced at every commit, so a record acknowledged to the caller (and hence a
response sent after it) survives a kill -9 of the process, and a power cut. Concurrent callers
share commits (group commit): while one thread writes and fsyncs, the others queue, and the next
writer takes the whole queue into one transaction, so throughput under load is not one fsync per
request. WAL lets `chancery audit` read while a server writes, without either waiting.

Append-only is enforced by the file itself: triggers refuse UPDATE and DELETE. With
`store_text=False` the question, the answer and the citations' quotes are never written
(metadata only: who, when, which collection and documents, the outcome).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
from pydantic import BaseModel, ConfigDict

from index.durable import fsync_dir
from service.errors import ChanceryError

AUDIT_DIR = "audit"
"""The audit folder's name in the data root, where no other folder is configured."""
DEFAULT_LIMIT = 100
_FILE = re.compile(r"^audit-(?P<month>\d{4}-\d{2})\.sqlite3$")
_SCHEMA_VERSION = 1
_BUSY_MS = 10_000
_COLUMNS = (
    "time",
    "request_id",
    "key",
    "client",
    "method",
    "route",
    "status",
    "collection",
    "question",
    "answerer",
    "answer",
    "citations",
    "abstained",
    "index_version",
    "latency_ms",
    "files",
    "doc_ids",
    "job_id",
)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS audit ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " time TEXT NOT NULL, request_id TEXT, key TEXT, client TEXT,"
    " method TEXT NOT NULL, route TEXT NOT NULL, status INTEGER NOT NULL, collection TEXT,"
    " question TEXT, answerer TEXT, answer TEXT, citations TEXT NOT NULL, abstained INTEGER,"
    " index_version TEXT, latency_ms REAL, files TEXT NOT NULL, doc_ids TEXT NOT NULL,"
    " job_id TEXT)",
    "CREATE INDEX IF NOT EXISTS audit_time ON audit (time)",
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
)


def audit_folder(data_dir: Path, configured: Path | None) -> Path:
    """The folder the audit log lives in: `configured`, or the data root's `audit/`."""
    return configured if configured is not None else data_dir / AUDIT_DIR


class AuditError(ChanceryError):
    """The audit log cannot be written or read. A request whose record cannot be written must
    fail: the log's promise is that nothing answered goes unrecorded."""

    status = 503
    exit_code = 1


class AuditCitation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    doc: str
    page: int
    quote: str | None = None


class AuditEvent(BaseModel):
    """What the caller knows about a request: everything but the time, which the log stamps."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: str
    route: str
    """The route template (`/v1/collections/{name}/ask`), not the path; the path of a request
    refused before it was routed (401, 403, 429); `/mcp tool:NAME` (`/mcp resource:NAME`) for
    an MCP call."""
    status: int
    request_id: str | None = None
    key: str | None = None
    """The name of the API key, None when keys are off."""
    client: str | None = None
    collection: str | None = None
    question: str | None = None
    answerer: str | None = None
    answer: str | None = None
    citations: tuple[AuditCitation, ...] = ()
    abstained: bool | None = None
    index_version: str | None = None
    latency_ms: float | None = None
    files: tuple[str, ...] = ()
    """Uploads: the file names sent."""
    doc_ids: tuple[str, ...] = ()
    """Deletions (and uploads, once known): the documents concerned."""
    job_id: str | None = None


class AuditRecord(AuditEvent):
    time: datetime
    """UTC, stamped by the log when the record is made."""


@dataclass
class _Pending:
    record: AuditRecord
    done: bool = False
    error: BaseException | None = None


class AuditLog:
    """The audit log of one data root, for one process; any number of threads may record at
    once, and other processes may read (and write) the same files."""

    def __init__(
        self,
        directory: Path,
        *,
        store_text: bool = True,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.directory = directory
        self.store_text = store_text
        self._clock = clock or _utc_now
        self._changed = threading.Condition()
        self._queue: list[_Pending] = []
        self._writing = False
        self._closed = False
        self._connections: dict[str, sqlite3.Connection] = {}
        """Open files by month, used only by the thread that is writing."""

    def record(self, event: AuditEvent) -> AuditRecord:
        """Write `event`, stamped with the time; return once it is durably committed (blocks:
        from async code use `record_async`). Raises AuditError when it cannot be written."""
        entry = _Pending(self._stamp(event))
        with self._changed:
            if self._closed:
                raise AuditError("the audit log is closed; the server is stopping")
            self._queue.append(entry)
            while self._writing and not entry.done:
                self._changed.wait()
            if self._closed and not entry.done:
                self._queue.remove(entry)
                raise AuditError("the audit log is closed; the server is stopping")
            batch: list[_Pending] = []
            if not entry.done:
                # No one is writing and this record is still queued: write the whole queue.
                self._writing = True
                batch, self._queue = self._queue, []
        if batch:
            self._write_batch(batch)
        if entry.error is not None:
            raise AuditError(
                f"the audit record could not be written to {self.directory} ({entry.error}); "
                "check that the disk has space and the folder is writable"
            ) from entry.error
        return entry.record

    async def record_async(self, event: AuditEvent) -> AuditRecord:
        """`record` on a worker thread, so the event loop serves others during the fsync."""
        return await anyio.to_thread.run_sync(self.record, event)

    def query(
        self,
        *,
        since: datetime | None = None,
        collection: str | None = None,
        key: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[AuditRecord]:
        return read_audit(self.directory, since=since, collection=collection, key=key, limit=limit)

    def close(self) -> None:
        """Refuse further records and close the files, once the record being written is in."""
        with self._changed:
            self._closed = True
            while self._writing:
                self._changed.wait()
            for connection in self._connections.values():
                connection.close()
            self._connections.clear()

    def _stamp(self, event: AuditEvent) -> AuditRecord:
        fields: dict[str, Any] = dict(event)
        if not self.store_text:
            fields.update(
                question=None,
                answer=None,
                citations=tuple(c.model_copy(update={"quote": None}) for c in event.citations),
            )
        return AuditRecord(**fields, time=self._clock().astimezone(UTC))

    def _write_batch(self, batch: list[_Pending]) -> None:
        error: BaseException | None = AuditError("the audit writer was interrupted")
        try:
            by_month: dict[str, list[AuditRecord]] = {}
            for entry in batch:
                by_month.setdefault(_month(entry.record.time), []).append(entry.record)
            for month, records in by_month.items():
                connection = self._connection(month)
                with connection:
                    connection.executemany(_INSERT, [_row(record) for record in records])
            error = None
        except (sqlite3.Error, OSError) as exc:
            error = exc
        finally:
            with self._changed:
                for entry in batch:
                    entry.done = True
                    entry.error = error
                self._writing = False
                self._changed.notify_all()

    def _connection(self, month: str) -> sqlite3.Connection:
        connection = self._connections.get(month)
        if connection is not None:
            return connection
        # Months before the newest are finished: close them so their files are complete
        # (checkpointed, no -wal beside them) for whoever archives them.
        for old in [name for name in self._connections if name < month]:
            self._connections.pop(old).close()
        path = self.directory / f"audit-{month}.sqlite3"
        created = not path.exists()
        if created:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Owner-only before SQLite opens it: questions and answers may be confidential.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        connection = sqlite3.connect(path, timeout=_BUSY_MS / 1000, check_same_thread=False)
        try:
            _prepare(connection, path)
            if created:
                # The new file's name must survive a power cut along with what is written to it.
                fsync_dir(self.directory)
        except BaseException:
            connection.close()
            raise
        self._connections[month] = connection
        return connection


def read_audit(
    directory: Path,
    *,
    since: datetime | None = None,
    collection: str | None = None,
    key: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[AuditRecord]:
    """The last `limit` records at or after `since` (of that collection, by that key), in the
    order they were written; the files are opened read-only, so a writer is never disturbed."""
    found: list[AuditRecord] = []
    first_month = _month(since.astimezone(UTC)) if since is not None else ""
    for month, path in sorted(audit_files(directory), reverse=True):
        if len(found) >= limit or month < first_month:
            break
        found.extend(_read_file(path, since, collection, key, limit - len(found)))
    found.reverse()
    return found


def audit_files(directory: Path) -> list[tuple[str, Path]]:
    """The month (`YYYY-MM`) and path of every audit file in the folder."""
    if not directory.is_dir():
        return []
    named = ((_FILE.fullmatch(path.name), path) for path in directory.iterdir())
    return [(match["month"], path) for match, path in named if match is not None]


def _read_file(
    path: Path, since: datetime | None, collection: str | None, key: str | None, limit: int
) -> list[AuditRecord]:
    conditions: list[str] = []
    values: list[object] = []
    for column, value in (
        ("time >= ?", _timestamp(since) if since is not None else None),
        ("collection = ?", collection),
        ("key = ?", key),
    ):
        if value is not None:
            conditions.append(column)
            values.append(value)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = f"SELECT {', '.join(_COLUMNS)} FROM audit {where} ORDER BY seq DESC LIMIT ?"
    try:
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=_BUSY_MS / 1000)
    except sqlite3.Error as exc:
        raise AuditError(f"cannot open the audit file {path}: {exc}") from exc
    try:
        rows = connection.execute(sql, [*values, limit]).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []  # a file its writer has created but not yet set up
        raise AuditError(f"cannot read the audit file {path}: {exc}") from exc
    finally:
        connection.close()
    return [_from_row(row) for row in rows]


_INSERT = f"INSERT INTO audit ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


def _prepare(connection: sqlite3.Connection, path: Path) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version > _SCHEMA_VERSION:
        raise AuditError(f"{path} was written by a newer Chancery; upgrade to write to it")
    connection.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
    connection.execute("PRAGMA journal_mode = WAL")
    # FULL: in WAL mode, NORMAL would not fsync at commit, and a power cut could then lose
    # records already acknowledged.
    connection.execute("PRAGMA synchronous = FULL")
    if version < _SCHEMA_VERSION:
        with connection:
            for statement in _SCHEMA:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")


def _row(record: AuditRecord) -> tuple[object, ...]:
    return (
        _timestamp(record.time),
        record.request_id,
        record.key,
        record.client,
        record.method,
        record.route,
        record.status,
        record.collection,
        record.question,
        record.answerer,
        record.answer,
        json.dumps([citation.model_dump() for citation in record.citations]),
        None if record.abstained is None else int(record.abstained),
        record.index_version,
        record.latency_ms,
        json.dumps(record.files),
        json.dumps(record.doc_ids),
        record.job_id,
    )


def _from_row(row: Sequence[Any]) -> AuditRecord:
    fields = dict(zip(_COLUMNS, row, strict=True))
    fields["time"] = datetime.fromisoformat(fields["time"])
    fields["citations"] = tuple(AuditCitation(**c) for c in json.loads(fields["citations"]))
    fields["files"] = tuple(json.loads(fields["files"]))
    fields["doc_ids"] = tuple(json.loads(fields["doc_ids"]))
    if fields["abstained"] is not None:
        fields["abstained"] = bool(fields["abstained"])
    return AuditRecord(**fields)


def _timestamp(moment: datetime) -> str:
    # One fixed UTC format, so text order is time order and `time >= ?` compares as times.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _month(moment: datetime) -> str:
    return moment.strftime("%Y-%m")


def _utc_now() -> datetime:
    return datetime.now(UTC)
