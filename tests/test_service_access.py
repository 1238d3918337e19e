"""Who may call what, over the whole app: every key scope against every kind of route and both
collections, each cell asserted; plus no keys (open, loopback only), failed-attempt braking and
the rate limit.

The app runs in process with the fake embedder over a data root with two collections, `default`
and `other`, each holding the answerer contract's two small documents.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.build import build_app
from service.collections import CollectionRegistry
from service.keys import KeyStore, Scope
from service.settings import Settings
from tests.answerer_contract import FILES
from tests.fakes import FakeEmbedder, build_index

BASE = "http://127.0.0.1"
QUESTION = {"question": "How many border crossings does Astoria have with Northland?"}


def _collections(data: Path) -> None:
    registry: CollectionRegistry[None] = CollectionRegistry(data, lambda _: None)
    for name in ("default", "other"):
        collection = registry.ensure_default() if name == "default" else registry.create(name)
        build_index(collection.index_dir, FILES, FakeEmbedder()).close()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("access")
    _collections(root)
    return root


@pytest.fixture(scope="module")
def keys(data: Path) -> dict[str, str]:
    store = KeyStore(data)
    made = {
        "reader": store.create("reader", ["default"], Scope.READ)[1],
        "writer": store.create("writer", ["default"], Scope.WRITE)[1],
        "admin": store.create("admin", "*", Scope.ADMIN)[1],
        "other-reader": store.create("other-reader", ["other"], Scope.READ)[1],
    }
    revoked = store.create("revoked", "*", Scope.ADMIN)[1]
    store.revoke("revoked")
    made["revoked"] = revoked
    store.close()
    return made


@pytest.fixture(scope="module")
def client(data: Path, keys: dict[str, str]) -> Iterator[TestClient]:
    # Braking repeated failures has its own test: here every failure must stay a 401.
    settings = Settings(
        data_dir=data, abstain_min_similarity=0.4, rate_limit_rps=None, auth_failures=100_000
    )
    app = build_app(settings, embedder=FakeEmbedder(), data_root=True)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as live:
        yield live


def call(client: TestClient, method: str, path: str, key: str | None, body: Any = None) -> int:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    response = client.request(method, path, json=body, headers=headers)
    return response.status_code


# (method, path, body, the scope it needs, the collection it touches)
ROUTES = [
    ("POST", "/v1/ask", QUESTION, "read", "default"),
    ("POST", "/v1/search", QUESTION, "read", "default"),
    ("GET", "/v1/documents", None, "read", "default"),
    ("GET", "/v1/documents/border.txt/pages/1", None, "read", "default"),
    ("POST", "/v1/collections/default/ask", QUESTION, "read", "default"),
    ("POST", "/v1/collections/other/ask", QUESTION, "read", "other"),
    ("GET", "/v1/collections/other/documents", None, "read", "other"),
    ("DELETE", "/v1/collections/default/documents/nothing.txt", None, "write", "default"),
    ("DELETE", "/v1/collections/other/documents/nothing.txt", None, "write", "other"),
    ("POST", "/v1/collections", {"name": "x"}, "admin", None),
    ("GET", "/metrics", None, "admin", None),
]
RANK = {"read": 0, "write": 1, "admin": 2}
KEYS = {
    "reader": ("read", {"default"}),
    "writer": ("write", {"default"}),
    "admin": ("admin", {"default", "other"}),
    "other-reader": ("read", {"other"}),
}


def expected(key: str, needs: str, collection: str | None) -> set[int]:
    scope, collections = KEYS[key]
    if RANK[scope] < RANK[needs] or (collection is not None and collection not in collections):
        return {403}
    # Allowed: the route's own answer (a document that does not exist is its own 404; creating
    # a collection is a 201 once and a 409 after).
    return {200, 201, 404, 409}


@pytest.mark.parametrize("key", list(KEYS))
@pytest.mark.parametrize(("method", "path", "body", "needs", "collection"), ROUTES)
def test_every_scope_on_every_route_and_collection(
    client: TestClient,
    keys: dict[str, str],
    key: str,
    method: str,
    path: str,
    body: Any,
    needs: str,
    collection: str | None,
) -> None:
    status = call(client, method, path, keys[key], body)
    assert status in expected(key, needs, collection), (key, method, path, status)


@pytest.mark.parametrize(("method", "path", "body", "needs", "collection"), ROUTES)
def test_without_a_valid_key_every_route_is_401(
    client: TestClient,
    keys: dict[str, str],
    method: str,
    path: str,
    body: Any,
    needs: str,
    collection: str | None,
) -> None:
    for key in (None, keys["revoked"], "chy_000000000000_" + "A" * 43):
        response = client.request(
            method, path, json=body, headers={"authorization": f"Bearer {key}"} if key else {}
        )
        assert response.status_code == 401, (key, response.text)
        assert "API key" in response.json()["detail"]
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/", "/static/app.css"])
def test_health_checks_and_the_page_need_no_key(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


def test_a_key_lists_only_its_collections(client: TestClient, keys: dict[str, str]) -> None:
    def names(key: str) -> set[str]:
        response = client.get("/v1/collections", headers={"authorization": f"Bearer {key}"})
        assert response.status_code == 200
        return {c["name"] for c in response.json()["collections"]}

    assert names(keys["reader"]) == {"default"}
    assert names(keys["other-reader"]) == {"other"}
    assert {"default", "other"} <= names(keys["admin"])


def test_a_forbidden_request_says_why(client: TestClient, keys: dict[str, str]) -> None:
    response = client.post(
        "/v1/collections/other/ask",
        json=QUESTION,
        headers={"authorization": f"Bearer {keys['reader']}"},
    )
    assert response.status_code == 403
    assert "may not use the collection 'other'" in response.json()["detail"]
    response = client.delete(
        "/v1/collections/default/documents/x.txt",
        headers={"authorization": f"Bearer {keys['reader']}"},
    )
    assert "needs 'write'" in response.json()["detail"]


def test_repeated_failures_from_one_address_are_slowed_down(
    data: Path, keys: dict[str, str]
) -> None:
    settings = Settings(data_dir=data, auth_failures=3, rate_limit_rps=None)
    app = build_app(settings, embedder=FakeEmbedder(), data_root=True)
    with TestClient(app, base_url=BASE) as live:
        wrong = {"authorization": "Bearer chy_000000000000_" + "B" * 43}
        statuses = [
            live.post("/v1/ask", json=QUESTION, headers=wrong).status_code for _ in range(4)
        ]
        assert statuses[:2] == [401, 401] and statuses[-1] == 429
        refused = live.post(
            "/v1/ask", json=QUESTION, headers={"authorization": f"Bearer {keys['reader']}"}
        )
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1


def test_the_rate_limit_answers_429_with_retry_after(data: Path, keys: dict[str, str]) -> None:
    settings = Settings(data_dir=data, rate_limit_rps=0.001, rate_limit_burst=2)
    app = build_app(settings, embedder=FakeEmbedder(), data_root=True)
    with TestClient(app, base_url=BASE) as live:
        headers = {"authorization": f"Bearer {keys['reader']}"}
        statuses = [live.get("/v1/documents", headers=headers).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert int(live.get("/v1/documents", headers=headers).headers["retry-after"]) >= 1


def test_another_host_name_is_refused(client: TestClient) -> None:
    response = client.get("/healthz", headers={"host": "evil.example"})
    assert response.status_code == 400


def test_the_mcp_transport_needs_a_key_for_every_collection(
    client: TestClient, keys: dict[str, str]
) -> None:
    # Its tools name their collection inside the session, where the access check cannot see.
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    assert call(client, "POST", "/mcp", None, body) == 401
    refused = client.post("/mcp", json=body, headers={"authorization": f"Bearer {keys['reader']}"})
    assert refused.status_code == 403 and "every collection" in refused.json()["detail"]
    assert call(client, "POST", "/mcp", keys["admin"], body) not in (401, 403)
