"""`chancery keys` and `chancery audit`, mounted on a stand-in root command."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from service.audit import AUDIT_DIR, AuditEvent, AuditLog
from service.cli_admin import audit_app, keys_app, parse_since
from service.errors import InvalidRequestError
from service.keys import KeyNotFoundError, KeyStore


@dataclass
class FakeSettings:
    data_dir: Path
    audit_dir: Path | None = None


@dataclass
class Invocation:
    settings: FakeSettings


def cli(data_dir: Path) -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = Invocation(FakeSettings(data_dir))

    root.add_typer(keys_app, name="keys")
    root.add_typer(audit_app, name="audit")
    return root


Run = Callable[..., Result]


@pytest.fixture
def run(tmp_path: Path) -> Run:
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(cli(tmp_path), list(args))

    return invoke


def test_create_prints_the_key_alone_on_stdout(run: Run, tmp_path: Path) -> None:
    done = run("keys", "create", "--name", "analyst", "--collections", "serbia,kosovo")
    assert done.exit_code == 0, done.output
    secret = done.stdout.strip()
    assert "shown this once" in done.stderr
    record = KeyStore(tmp_path).authenticate(secret)
    assert record is not None and record.collections == ("kosovo", "serbia")


def test_list_and_revoke(run: Run) -> None:
    created = run("keys", "create", "--name", "ops", "--collections", "*", "--scope", "admin")
    secret = created.stdout.strip()
    listed = run("keys", "list")
    assert "ops  admin  every collection  created" in listed.stdout
    assert secret not in listed.stdout
    assert run("keys", "revoke", "ops").stdout.strip() == "revoked the key ops"
    (entry,) = json.loads(run("keys", "list", "--json").stdout)
    assert entry["name"] == "ops" and entry["revoked_at"] is not None
    assert secret not in json.dumps(entry)


def test_errors_reach_the_caller_as_chancery_errors(run: Run) -> None:
    done = run("keys", "revoke", "nobody")
    assert isinstance(done.exception, KeyNotFoundError)


def test_audit_prints_lines_and_json_filtered(run: Run, tmp_path: Path) -> None:
    log = AuditLog(tmp_path / AUDIT_DIR)
    for collection, key in (("serbia", "analyst"), ("kosovo", "analyst"), ("serbia", "ops")):
        log.record(
            AuditEvent(
                method="POST",
                route="/v1/collections/{name}/ask",
                status=200,
                collection=collection,
                key=key,
                question=f"about {collection}?",
            )
        )
    log.close()
    lines = run("audit", "--collection", "serbia").stdout.splitlines()
    assert len(lines) == 2 and lines[0].endswith("about serbia?")
    records = [
        json.loads(line) for line in run("audit", "--key", "ops", "--json").stdout.splitlines()
    ]
    assert [(r["collection"], r["key"]) for r in records] == [("serbia", "ops")]
    assert run("audit", "--since", "1h").stdout.count("\n") == 3
    assert "no audit records match" in run("audit", "--key", "nobody").stderr


def test_since_reads_dates_times_and_ages() -> None:
    now = datetime(2025, 6, 1, 12, tzinfo=UTC)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("2025-05-01", now) == datetime(2025, 5, 1, tzinfo=UTC)
    assert parse_since("2025-05-01T09:00+02:00", now) == datetime(2025, 5, 1, 7, tzinfo=UTC)
    with pytest.raises(InvalidRequestError, match="30m"):
        parse_since("yesterday", now)
