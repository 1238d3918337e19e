"""API keys: shown once, stored as digests, scoped to collections, revoked at once everywhere."""

from __future__ import annotations

import hashlib
import sqlite3
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.keys import (
    ALL,
    KEY_PREFIX,
    KEYS_FILE,
    InvalidKeyError,
    KeyExistsError,
    KeyNotFoundError,
    KeyRecord,
    KeyStore,
    Scope,
    allows,
    bearer_token,
    parse_collections,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path, clock=lambda: NOW)


def test_a_created_key_authenticates_as_its_record(store: KeyStore) -> None:
    record, secret = store.create("analyst", ["serbia", "kosovo"], "read")
    assert secret.startswith(KEY_PREFIX)
    assert record.collections == ("kosovo", "serbia")
    assert record.scope is Scope.READ
    assert record.created_at == NOW
    assert store.authenticate(secret) == record
    assert store.any_keys()


def test_only_a_digest_is_stored(store: KeyStore) -> None:
    _, secret = store.create("analyst", "*", "admin")
    raw = store.path.read_bytes()
    assert secret.encode() not in raw
    assert secret.split("_", 2)[2].encode() not in raw
    with sqlite3.connect(store.path) as db:
        (digest,) = db.execute("SELECT sha256 FROM keys").fetchone()
    assert digest == hashlib.sha256(secret.encode()).hexdigest()


def test_the_store_file_is_private(store: KeyStore) -> None:
    store.create("analyst", "*", "read")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_wrong_malformed_and_unknown_keys_are_refused(store: KeyStore) -> None:
    _, secret = store.create("analyst", "*", "read")
    key_id = secret[len(KEY_PREFIX) :].split("_", 1)[0]
    wrong_secret = f"{KEY_PREFIX}{key_id}_{'A' * 43}"
    unknown_id = f"{KEY_PREFIX}{'0' * 12}_{'A' * 43}"
    for token in (wrong_secret, unknown_id, secret[:-1], secret + "x", "", "Bearer " + secret):
        assert store.authenticate(token) is None, token


def test_listing_never_shows_a_secret(store: KeyStore) -> None:
    first, _ = store.create("a-first", "*", "admin")
    second, _ = store.create("b-second", ["serbia"], "write")
    listed = store.list()
    assert listed == [first, second]
    assert all(isinstance(item, KeyRecord) for item in listed)
    assert not hasattr(listed[0], "sha256")


def test_revocation_is_seen_at_once_by_another_process(store: KeyStore, tmp_path: Path) -> None:
    _, secret = store.create("analyst", "*", "read")
    assert store.authenticate(secret) is not None
    revoke = (
        "import sys; from pathlib import Path; from service.keys import KeyStore; "
        "KeyStore(Path(sys.argv[1])).revoke('analyst')"
    )
    subprocess.run([sys.executable, "-c", revoke, str(tmp_path)], check=True)
    assert store.authenticate(secret) is None
    assert not store.any_keys()
    (listed,) = store.list()
    assert listed.revoked_at is not None


def test_a_key_created_by_another_process_is_seen_without_a_restart(
    store: KeyStore, tmp_path: Path
) -> None:
    assert not store.any_keys()  # no file yet
    create = (
        "import sys; from pathlib import Path; from service.keys import KeyStore; "
        "print(KeyStore(Path(sys.argv[1])).create('ops', '*', 'admin')[1])"
    )
    done = subprocess.run(
        [sys.executable, "-c", create, str(tmp_path)], check=True, capture_output=True, text=True
    )
    assert store.any_keys()
    record = store.authenticate(done.stdout.strip())
    assert record is not None and record.name == "ops"


def test_reading_an_empty_data_root_creates_nothing(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "data")
    assert store.list() == []
    assert not store.any_keys()
    assert store.authenticate(f"{KEY_PREFIX}{'0' * 12}_{'A' * 43}") is None
    assert not (tmp_path / "data").exists()


def test_names_are_unique_even_after_revocation(store: KeyStore) -> None:
    store.create("analyst", "*", "read")
    with pytest.raises(KeyExistsError, match="choose another name"):
        store.create("analyst", "*", "read")
    store.revoke("analyst")
    with pytest.raises(KeyExistsError):
        store.create("analyst", "*", "read")


@pytest.mark.parametrize("name", ["", "-lead", "has space", "a/b", "x" * 65, "ключ"])
def test_bad_names_are_refused(store: KeyStore, name: str) -> None:
    with pytest.raises(InvalidKeyError, match="cannot name a key"):
        store.create(name, "*", "read")
    assert not (store.path.parent / KEYS_FILE).exists()


def test_bad_scopes_and_collections_are_refused(store: KeyStore) -> None:
    with pytest.raises(InvalidKeyError, match="choose one of read, write, admin"):
        store.create("analyst", "*", "owner")
    with pytest.raises(InvalidKeyError, match="at least one collection"):
        store.create("analyst", [], "read")
    with pytest.raises(InvalidKeyError, match="not both"):
        store.create("analyst", ["*", "serbia"], "read")
    with pytest.raises(InvalidKeyError, match="not a collection name"):
        store.create("analyst", ["Serbia"], "read")


def test_collections_parse_from_a_comma_list() -> None:
    assert parse_collections("b, a,b") == ("a", "b")
    assert parse_collections("*") == ALL
    assert parse_collections(["a,b", "c"]) == ("a", "b", "c")


def test_revoking_an_unknown_key_says_how_to_list_them(store: KeyStore) -> None:
    with pytest.raises(KeyNotFoundError, match="chancery keys list"):
        store.revoke("nobody")


def test_scopes_include_the_lower_ones_and_collections_bound_them() -> None:
    reader = KeyRecord("r", "0" * 12, Scope.READ, ("serbia",), NOW)
    writer = KeyRecord("w", "1" * 12, Scope.WRITE, ("serbia",), NOW)
    admin = KeyRecord("a", "2" * 12, Scope.ADMIN, ALL, NOW)
    assert allows(reader, Scope.READ, "serbia")
    assert not allows(reader, Scope.READ, "kosovo")
    assert not allows(reader, Scope.WRITE, "serbia")
    assert allows(writer, Scope.READ, "serbia") and allows(writer, Scope.WRITE, "serbia")
    assert not allows(writer, Scope.ADMIN, None)
    assert allows(admin, Scope.ADMIN, None) and allows(admin, Scope.READ, "anything")
    assert allows(reader, Scope.READ, None)
    revoked = KeyRecord("x", "3" * 12, Scope.ADMIN, ALL, NOW, revoked_at=NOW)
    assert not allows(revoked, Scope.READ, "serbia")


def test_bearer_token_reads_the_header() -> None:
    assert bearer_token("Bearer chy_abc") == "chy_abc"
    assert bearer_token("bearer   chy_abc ") == "chy_abc"
    assert bearer_token("Basic dXNlcjpwYXNz") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None


def test_a_store_is_safe_to_share_between_threads(store: KeyStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda n: store.create(f"key-{n}", "*", "read"), range(40)))
        found = list(pool.map(lambda pair: store.authenticate(pair[1]), made))
    assert found == [record for record, _ in made]
