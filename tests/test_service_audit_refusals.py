"""Refusals in the audit log: every 401 and 403 the access middleware gives, and its 429s, each
with who was refused and where; a flood of bad keys adds a bounded number of records.

The app runs in process with the fake embedder over a data root with the collections `default`
and `other`. Each request sends its own request id, by which the test finds its record.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.audit import AUDIT_DIR, AuditRecord, read_audit
from service.build import build_app
from service.cli_admin import audit_app
from service.collections import CollectionRegistry
from service.keys import KeyStore, Scope
from service.settings import Settings
from tests.answerer_contract import FILES
from tests.fakes import FakeEmbedder, build_index

BASE = "http://127.0.0.1"
QUESTION = {"question": "How many border crossings does Astoria have with Northland?"}
BAD_KEY = "chy_000000000000_" + "C" * 43
_ids = itertools.count()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("refusals")
    registry: CollectionRegistry[None] = CollectionRegistry(root, lambda _: None)
    build_index(registry.ensure_default().index_dir, FILES, FakeEmbedder()).close()
    build_index(registry.create("other").index_dir, FILES, FakeEmbedder()).close()
    return root


@pytest.fixture(scope="module")
def reader(data: Path) -> str:
    store = KeyStore(data)
    try:
        return store.create("reader", ["default"], Scope.READ)[1]
    finally:
        store.close()


def served(data: Path, **settings: Any) -> TestClient:
    app = build_app(
        Settings(data_dir=data, abstain_min_similarity=0.4, **settings),
        embedder=FakeEmbedder(),
        data_root=True,
    )
    return TestClient(app, base_url=BASE, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(data: Path, reader: str) -> Iterator[TestClient]:
    with served(data, rate_limit_rps=None, auth_failures=100_000) as live:
        yield live


@dataclass
class Invocation:
    """What the `chancery` root command leaves for its sub-commands."""

    settings: Settings


@dataclass
class Sent:
    status: int
    request_id: str


def send(client: TestClient, method: str, path: str, key: str | None, body: Any = None) -> Sent:
    request_id = f"refusal-{next(_ids)}"
    headers = {"x-request-id": request_id}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    response = client.request(method, path, json=body, headers=headers)
    assert response.headers["x-request-id"] == request_id
    return Sent(response.status_code, request_id)


def records(data: Path) -> dict[str, AuditRecord]:
    """Every record of the data root, by request id."""
    found = read_audit(data / AUDIT_DIR, limit=100_000)
    return {record.request_id: record for record in found if record.request_id is not None}


def test_a_401_a_403_and_a_429_are_each_recorded(data: Path, reader: str) -> None:
    with served(data, rate_limit_rps=0.001, rate_limit_burst=1) as live:
        missing = send(live, "POST", "/v1/collections/other/ask", None, QUESTION)
        wrong = send(live, "POST", "/v1/ask", BAD_KEY, QUESTION)
        forbidden = send(live, "POST", "/v1/collections/other/ask", reader, QUESTION)
        allowed = send(live, "GET", "/v1/documents", reader)
        over_rate = send(live, "GET", "/v1/documents", reader)
    statuses = [s.status for s in (missing, wrong, forbidden, allowed, over_rate)]
    assert statuses == [401, 401, 403, 200, 429]
    found = records(data)
    expected = [
        # (sent, key, method, route, collection)
        (missing, None, "POST", "/v1/collections/other/ask", "other"),
        (wrong, None, "POST", "/v1/ask", "default"),
        (forbidden, "reader", "POST", "/v1/collections/other/ask", "other"),
        (over_rate, "reader", "GET", "/v1/documents", "default"),
    ]
    for sent, key, method, route, collection in expected:
        record = found[sent.request_id]
        assert (record.status, record.key, record.method, record.route, record.collection) == (
            sent.status,
            key,
            method,
            route,
            collection,
        )
        assert record.client == "testclient"
        # The body is never read: no question, no answer.
        assert record.question is None and record.answer is None and record.citations == ()
    # An allowed request is not a refusal (listing documents is not audited at all).
    assert allowed.request_id not in found


def test_the_audit_command_finds_refusals_by_key_and_collection(
    client: TestClient, data: Path, reader: str
) -> None:
    forbidden = send(client, "DELETE", "/v1/collections/default/documents/x.txt", reader)
    assert forbidden.status == 403
    root = typer.Typer()

    @root.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = Invocation(Settings(data_dir=data))

    root.add_typer(audit_app, name="audit")
    done = CliRunner().invoke(root, ["audit", "--key", "reader", "--json", "--limit", "1000"])
    assert done.exit_code == 0, done.output
    listed = [json.loads(line) for line in done.stdout.splitlines()]
    (record,) = [r for r in listed if r["request_id"] == forbidden.request_id]
    assert record["status"] == 403 and record["method"] == "DELETE"
    assert record["route"] == "/v1/collections/default/documents/x.txt"
    lines = CliRunner().invoke(root, ["audit", "--collection", "default", "--limit", "1000"])
    assert any(
        "  403  reader  default  DELETE /v1/collections/default/documents/x.txt" in line
        for line in lines.stdout.splitlines()
    )


def test_public_routes_and_allowed_requests_are_not_refusals(
    client: TestClient, data: Path, reader: str
) -> None:
    public = [send(client, "GET", path, None) for path in ("/healthz", "/", "/static/app.css")]
    assert {sent.status for sent in public} == {200}
    answered = send(client, "POST", "/v1/ask", reader, QUESTION)
    found = records(data)
    assert not any(sent.request_id in found for sent in public)
    # The answer is recorded by its route, with its question, as before.
    record = found[answered.request_id]
    assert record.status == 200 and record.question == QUESTION["question"]


def test_a_flood_of_bad_keys_adds_a_bounded_number_of_records(data: Path) -> None:
    before = len(read_audit(data / AUDIT_DIR, limit=100_000))
    with served(data, auth_failures=3, rate_limit_rps=None) as live:
        sent = [send(live, "POST", "/v1/ask", BAD_KEY, QUESTION) for _ in range(40)]
    assert [s.status for s in sent[:3]] == [401, 401, 429]
    assert {s.status for s in sent[3:]} == {429}
    found = records(data)
    recorded = [s for s in sent if s.request_id in found]
    # The two 401s and the 429 that started the block; while it lasts, at most one refusal a
    # minute is recorded for the address, and this test takes far less.
    assert [found[s.request_id].status for s in recorded] == [401, 401, 429]
    assert recorded == sent[:3]
    assert len(read_audit(data / AUDIT_DIR, limit=100_000)) == before + 3


def test_a_refusal_is_sent_even_when_the_audit_cannot_be_written(data: Path) -> None:
    with served(data, rate_limit_rps=None) as live:
        live.app.state.audit.close()
        refused = send(live, "POST", "/v1/ask", None, QUESTION)
    assert refused.status == 401
    assert refused.request_id not in records(data)


def test_a_configured_audit_folder_holds_the_records_and_the_command_reads_it(
    data: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "audit-volume"
    before = len(read_audit(data / AUDIT_DIR, limit=100_000))
    with served(data, rate_limit_rps=None, audit_dir=elsewhere) as live:
        refused = send(live, "POST", "/v1/ask", None, QUESTION)
    assert refused.status == 401
    (record,) = read_audit(elsewhere)
    assert record.request_id == refused.request_id and record.status == 401
    assert len(read_audit(data / AUDIT_DIR, limit=100_000)) == before
    root = typer.Typer()

    @root.callback()
    def _root(ctx: typer.Context) -> None:
        ctx.obj = Invocation(Settings(data_dir=data, audit_dir=elsewhere))

    root.add_typer(audit_app, name="audit")
    done = CliRunner().invoke(root, ["audit", "--json"])
    assert done.exit_code == 0, done.output
    assert [json.loads(line)["request_id"] for line in done.stdout.splitlines()] == [
        refused.request_id
    ]
