"""API keys: who may call the service, on which collections, with which scope.

The keys live in the data root, `DATA/keys.sqlite3`, never in an index. SQLite rather than a JSON
file: `create` from two terminals cannot both take a name (a UNIQUE constraint decides, inside a
transaction), and a revocation committed by `chancery keys revoke` is seen by a running server at
its very next request, because every authentication is one indexed read of the file; a JSON file
would need a rename dance to write and an mtime check (coarse on some file systems) to notice.

A key reads `chy_<key id>_<secret>`: 6 random bytes of id in hex, then 32 random bytes, URL-safe
base64. Only the SHA-256 of the whole key is stored. A slow password hash (bcrypt, scrypt) exists
to make guessing a low-entropy password expensive; a 256-bit random secret cannot be guessed at
any speed, so a fast hash loses nothing, and keeps authentication at microseconds per request.
The id is not secret: it finds the row, and the digest comparison (`hmac.compare_digest`) is the
only step that depends on the secret, so its timing tells an attacker nothing.

Revoked keys keep their row (marked with the time of revocation) so that their name, which the
audit log records, never comes to mean another key.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal

from service.collections import parse_name
from service.errors import ChanceryError

KEYS_FILE = "keys.sqlite3"
KEY_PREFIX = "chy_"
ALL: Literal["*"] = "*"
"""A key's collections when it may use every collection, those created later included."""
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"

AllCollections = Literal["*"]
_NAME = re.compile(NAME_PATTERN)
_ID_BYTES = 6
_SECRET_BYTES = 32
_KEY = re.compile(rf"^{KEY_PREFIX}(?P<key_id>[0-9a-f]{{{2 * _ID_BYTES}}})_[A-Za-z0-9_-]{{43}}$")
_SCHEMA_VERSION = 1
_BUSY_MS = 10_000
_NO_MATCH = hashlib.sha256(b"no key has this digest").hexdigest()
"""Compared against when the id is unknown, so that path costs what a wrong secret costs."""


class Scope(StrEnum):
    """What a key may do; each scope includes the ones before it."""

    READ = "read"
    """Ask, search, chat; list and read documents and pages."""
    WRITE = "write"
    """Upload and delete documents."""
    ADMIN = "admin"
    """Create and delete collections; metrics; index details."""

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {Scope.READ: 0, Scope.WRITE: 1, Scope.ADMIN: 2}


class KeyStoreError(ChanceryError):
    """A key cannot be created, found or read; the message says what to do."""

    status = 400
    exit_code = 1


class InvalidKeyError(KeyStoreError):
    """A name, scope or collection list a key cannot have."""

    status = 422
    exit_code = 2


class KeyExistsError(KeyStoreError):
    status = 409


class KeyNotFoundError(KeyStoreError):
    status = 404


@dataclass(frozen=True)
class KeyRecord:
    """A key as stored, without its secret."""

    name: str
    key_id: str
    scope: Scope
    collections: tuple[str, ...] | AllCollections
    created_at: datetime
    revoked_at: datetime | None = None

    def sees(self, collection: str) -> bool:
        """Whether the key may use the collection at all (listings show only these)."""
        return self.collections == ALL or collection in self.collections


def allows(record: KeyRecord, scope: Scope, collection: str | None) -> bool:
    """Whether the key may do what needs `scope` on `collection`; None for what belongs to no
    collection (metrics, listing collections: that listing is then filtered with `sees`)."""
    if record.revoked_at is not None or record.scope.rank < scope.rank:
        return False
    return collection is None or record.sees(collection)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None when there is none."""
    if authorization is None:
        return None
    kind, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if kind.lower() == "bearer" and token else None


def parse_collections(raw: str | Sequence[str]) -> tuple[str, ...] | AllCollections:
    """`*` (every collection) or collection names, each checked, duplicates removed, sorted."""
    items = [raw] if isinstance(raw, str) else list(raw)
    names = [item.strip() for piece in items for item in piece.split(",") if item.strip()]
    if ALL in names:
        if len(names) > 1:
            raise InvalidKeyError(
                "give '*' (every collection) or a list of collection names, not both"
            )
        return ALL
    if not names:
        raise InvalidKeyError("a key needs at least one collection, or '*' for every collection")
    try:
        return tuple(sorted({parse_name(name) for name in names}))
    except ChanceryError as exc:
        raise InvalidKeyError(str(exc)) from exc


def parse_scope(raw: str) -> Scope:
    try:
        return Scope(raw)
    except ValueError:
        choices = ", ".join(scope.value for scope in Scope)
        raise InvalidKeyError(f"'{raw}' is not a scope; choose one of {choices}") from None


class KeyStore:
    """The keys of one data root. Safe to share between threads; other processes (the CLI, a
    second server) may change the file at any time, and what they commit is seen at once."""

    def __init__(self, data_root: Path, *, clock: Callable[[], datetime] | None = None) -> None:
        self.path = data_root / KEYS_FILE
        self._clock = clock or _utc_now
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    def create(
        self, name: str, collections: str | Sequence[str], scope: Scope | str
    ) -> tuple[KeyRecord, str]:
        """A new key and its secret, which is shown this once: only its digest is kept."""
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise InvalidKeyError(
                f"{name!r} cannot name a key: use 1 to 64 letters, digits, '_', '.', '@' or '-', "
                "starting with a letter or a digit"
            )
        record = KeyRecord(
            name=name,
            key_id=secrets.token_hex(_ID_BYTES),
            scope=scope if isinstance(scope, Scope) else parse_scope(scope),
            collections=parse_collections(collections),
            created_at=self._clock(),
        )
        secret = f"{KEY_PREFIX}{record.key_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"
        try:
            with self._writing() as db:
                db.execute(
                    "INSERT INTO keys (name, key_id, sha256, scope, collections, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record.name,
                        record.key_id,
                        _digest(secret),
                        record.scope.value,
                        json.dumps(record.collections),
                        record.created_at.isoformat(),
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise KeyExistsError(
                f"a key named '{name}' exists (revoked keys keep their names, so the audit log "
                "never confuses two keys); choose another name"
            ) from exc
        return record, secret

    def list(self) -> list[KeyRecord]:
        """Every key, revoked ones included, oldest first; never a secret or its digest."""
        with self._transaction() as db:
            if db is None:
                return []
            rows = db.execute(f"SELECT {_COLUMNS} FROM keys ORDER BY created_at, name").fetchall()
        return [_record(row) for row in rows]

    def revoke(self, name: str) -> KeyRecord:
        """Revoke the key now: the next request that presents it, in any process, gets 401."""
        with self._transaction() as db:
            row = None
            if db is not None:
                db.execute(
                    "UPDATE keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                    (self._clock().isoformat(), name),
                )
                row = db.execute(f"SELECT {_COLUMNS} FROM keys WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise KeyNotFoundError(f"no key named '{name}'; `chancery keys list` shows the keys")
        return _record(row)

    def authenticate(self, token: str) -> KeyRecord | None:
        """The live key `token` is, or None: unknown, malformed or revoked."""
        match = _KEY.fullmatch(token)
        if match is None:
            return None
        with self._transaction() as db:
            row = None
            if db is not None:
                row = db.execute(
                    f"SELECT {_COLUMNS}, sha256 FROM keys WHERE key_id = ? AND revoked_at IS NULL",
                    (match["key_id"],),
                ).fetchone()
        stored = row[-1] if row is not None else _NO_MATCH
        if not hmac.compare_digest(_digest(token), stored) or row is None:
            return None
        return _record(row[:-1])

    def any_keys(self) -> bool:
        """Whether a live key exists: when one does, every route but the health checks needs
        one."""
        with self._transaction() as db:
            if db is None:
                return False
            row = db.execute("SELECT EXISTS (SELECT 1 FROM keys WHERE revoked_at IS NULL)")
            return bool(row.fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection | None]:
        """One transaction on the store, or None when there is no store file yet (reading does
        not create one: `keys list` on a fresh data root leaves it as it was)."""
        with self._lock:
            db = self._connect(create=False)
            if db is None:
                yield None
                return
            with db:
                yield db

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One transaction on the store, creating the file if need be."""
        with self._lock:
            db = self._connect(create=True)
            assert db is not None, "create=True makes the file"
            with db:
                yield db

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if self._connection is not None:
            return self._connection
        if not self.path.exists():
            if not create:
                return None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Created owner-only before SQLite opens it: digests are not secrets, but the list
            # of who holds which access is nobody else's business.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        # One connection, used under the lock from whichever thread holds it.
        db = sqlite3.connect(self.path, timeout=_BUSY_MS / 1000, check_same_thread=False)
        try:
            _prepare(db, self.path)
        except BaseException:
            db.close()
            raise
        self._connection = db
        return db


_COLUMNS = "name, key_id, scope, collections, created_at, revoked_at"


def _prepare(db: sqlite3.Connection, path: Path) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > _SCHEMA_VERSION:
        raise KeyStoreError(
            f"{path} was written by a newer Chancery (schema {version}); upgrade to use it"
        )
    # WAL: a server authenticating never waits for `keys create` in another process.
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
    if version < _SCHEMA_VERSION:
        with db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS keys ("
                " name TEXT PRIMARY KEY,"
                " key_id TEXT NOT NULL UNIQUE,"
                " sha256 TEXT NOT NULL,"
                " scope TEXT NOT NULL,"
                " collections TEXT NOT NULL,"
                " created_at TEXT NOT NULL,"
                " revoked_at TEXT)"
            )
            db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")


def _record(row: Sequence[str | None]) -> KeyRecord:
    name, key_id, scope, collections, created_at, revoked_at = row
    assert name is not None and key_id is not None and scope is not None
    assert collections is not None and created_at is not None
    listed = json.loads(collections)
    return KeyRecord(
        name=name,
        key_id=key_id,
        scope=Scope(scope),
        collections=ALL if listed == ALL else tuple(listed),
        created_at=datetime.fromisoformat(created_at),
        revoked_at=datetime.fromisoformat(revoked_at) if revoked_at else None,
    )


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _utc_now() -> datetime:
    return datetime.now(UTC)
