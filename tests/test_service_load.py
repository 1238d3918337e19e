"""The real server under load with keys and the audit log on: every request answered, and the
audit holding exactly the requests the clients saw acknowledged, even across a kill -9.

`chancery serve` (real model, uvicorn, its own process) serves a data root holding the three
sample documents; two read keys share the load. Each request carries its own `X-Request-ID`,
which the server keeps, so an audit record can be matched to the request that made it. Nothing
here measures time: throughput with and without auth and audit is `bench/auth_audit.py`'s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eval.load import Outcome, Planned, plan, run_load
from service import subprocess_server
from service.audit import AuditRecord, read_audit
from service.keys import KeyStore, Scope
from tests.conftest import REPO, SAMPLES

REQUESTS = 10_000
CONCURRENCY = 32
KILL_AFTER = 300
"""Acknowledged answers before the second server is killed: enough that the audit's group
commits are well under way, so the kill lands between and during them."""
KILL_REQUESTS = 3_000
STARTUP_SECONDS = 180
REQUEST_SECONDS = 300
"""Generous: on two busy cores, 32 queued requests can wait a while; no test measures time."""
FILES = sorted(
    SAMPLES / name
    for name in (
        "northland-national-security-strategy.pdf",
        "northland-energy-brief.md",
        "astoria-relations-note.html",
    )
)
QUESTIONS = (
    "Who is responsible for coordinating the implementation of the strategy?",
    "Where does Northland import its gas from?",
    "How many border crossings does Astoria have with Northland?",
    "What does the strategy say about cyber attacks?",
    "Which agency leads the response to a crisis?",
)
ROUTES = (
    ("/v1/search", "/v1/search"),
    ("/v1/collections/default/search", "/v1/collections/{name}/search"),
    ("/v1/ask", "/v1/ask"),
    ("/v1/collections/default/ask", "/v1/collections/{name}/ask"),
)
"""(path sent, route template the audit records)."""
KEYS = ("loader-a", "loader-b")


@dataclass(frozen=True)
class Served:
    data: Path
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    root = tmp_path_factory.mktemp("load")
    data = root / "data"
    ingest = subprocess.run(
        [sys.executable, "-m", "service.cli", "ingest", *map(str, FILES)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env=subprocess_server.child_environment({"CHANCERY_DATA_DIR": str(data)}),
    )
    assert ingest.returncode == 0, ingest.stderr
    store = KeyStore(data)
    try:
        tokens = {name: store.create(name, ["default"], Scope.READ)[1] for name in KEYS}
    finally:
        store.close()
    return Served(data, tokens)


@pytest.fixture(scope="module")
def server(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("load-server") / "server.log"
    try:
        with subprocess_server.running_server(
            None,
            log,
            startup_seconds=STARTUP_SECONDS,
            cwd=REPO,
            env={"CHANCERY_DATA_DIR": str(served.data)},
        ) as url:
            yield url
    except subprocess_server.ServerStartError as exc:
        pytest.fail(str(exc))


def _requests(served: Served, count: int, prefix: str) -> list[Planned]:
    """`count` requests cycling through the routes, questions and keys; each request's key is
    in its headers, its question in its body."""

    def make(number: int) -> tuple[str, str, Any]:
        path = ROUTES[number % len(ROUTES)][0]
        question = f"{QUESTIONS[number % len(QUESTIONS)]} (request {number})"
        return "POST", path, {"question": question, "k": 3}

    planned = plan(count, make, prefix=prefix)
    return [
        Planned(
            p.request_id,
            p.method,
            p.path,
            p.json,
            {"authorization": f"Bearer {served.tokens[KEYS[number % len(KEYS)]]}"},
        )
        for number, p in enumerate(planned)
    ]


def _audited(data: Path, prefix: str) -> list[AuditRecord]:
    records = read_audit(data / "audit", limit=10 * REQUESTS)
    return [r for r in records if r.request_id and r.request_id.startswith(prefix)]


def _matches(record: AuditRecord, sent: Planned, served: Served) -> bool:
    """The record says what the request was: route, key, question, collection, success."""
    template = dict(ROUTES)[sent.path]
    key = next(name for name, token in served.tokens.items() if token in str(sent.headers))
    return (
        record.route == template
        and record.method == "POST"
        and record.key == key
        and record.question == sent.json["question"]
        and record.collection == "default"
        and record.status == 200
        and record.index_version is not None
    )


def test_ten_thousand_requests_at_concurrency_32_are_all_answered_and_audited_exactly(
    served: Served, server: str
) -> None:
    sent = _requests(served, REQUESTS, "load")
    result = run_load(server, sent, CONCURRENCY, timeout_s=REQUEST_SECONDS)

    failed = [o for o in result.outcomes if not o.acknowledged]
    assert not failed, f"{len(failed)} failed, for example {failed[:3]}"
    assert len(result.outcomes) == REQUESTS

    records = _audited(served.data, "load-")
    by_id = {r.request_id: r for r in records}
    # Exactly the acknowledged requests: none missing, none twice, none invented.
    assert len(records) == len(by_id) == REQUESTS
    assert set(by_id) == {o.request_id for o in result.outcomes}
    wrong = [p.request_id for p in sent if not _matches(by_id[p.request_id], p, served)]
    assert not wrong, f"{len(wrong)} records do not describe their request: {wrong[:5]}"
    answers = [r for r in records if r.route.endswith("/ask")]
    assert answers and all(r.answer is not None and r.answerer for r in answers)


def test_every_acknowledged_request_is_in_the_audit_after_a_kill_9(
    served: Served, tmp_path: Path
) -> None:
    sent = _requests(served, KILL_REQUESTS, "kill")
    acknowledged: list[Outcome] = []
    with subprocess_server.server_process(
        None,
        tmp_path / "server.log",
        startup_seconds=STARTUP_SECONDS,
        cwd=REPO,
        env={"CHANCERY_DATA_DIR": str(served.data)},
    ) as (url, process):

        def count(outcome: Outcome) -> None:
            if outcome.acknowledged:
                acknowledged.append(outcome)
                if len(acknowledged) == KILL_AFTER:
                    os.kill(process.pid, signal.SIGKILL)

        result = run_load(url, sent, CONCURRENCY, timeout_s=REQUEST_SECONDS, on_outcome=count)
        assert process.wait(timeout=REQUEST_SECONDS) == -signal.SIGKILL

    cut = [o for o in result.outcomes if o.status is None]
    # The kill came mid-load: requests were in flight, and later ones found no server.
    assert len(acknowledged) >= KILL_AFTER and cut, result.statuses()
    assert all(o.status in (None, 200) for o in result.outcomes), result.statuses()
    audited = {r.request_id for r in _audited(served.data, "kill-")}
    missing = sorted({o.request_id for o in acknowledged} - audited)
    assert not missing, f"{len(missing)} acknowledged requests are not in the audit: {missing[:5]}"
    # Records of requests whose answer the kill cut off may be there; nothing else may.
    assert audited <= {p.request_id for p in sent}
