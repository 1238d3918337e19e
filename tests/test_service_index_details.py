"""What built the index, and who sees all of it: `/v1/index` shows the library versions (and a
local model folder's path) to admin keys and on a server without keys, never to other keys.

The app runs in process with the fake embedder over a data root whose collection `default`
holds the answerer contract's two small documents.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.build import build_app
from service.collections import CollectionRegistry
from service.keys import KeyRecord, KeyStore, Scope
from service.routers.documents import shows_details, without_details
from service.schemas import IndexResponse
from service.settings import Settings
from tests.answerer_contract import FILES
from tests.fakes import FakeEmbedder, build_index

BASE = "http://127.0.0.1"
ROUTES = ["/v1/index", "/v1/collections/default/index"]


def _data_root(root: Path) -> Path:
    registry: CollectionRegistry[None] = CollectionRegistry(root, lambda _: None)
    build_index(registry.ensure_default().index_dir, FILES, FakeEmbedder()).close()
    return root


def _client(data: Path) -> TestClient:
    settings = Settings(data_dir=data, rate_limit_rps=None)
    app = build_app(settings, embedder=FakeEmbedder(), data_root=True)
    return TestClient(app, base_url=BASE, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    data = _data_root(tmp_path_factory.mktemp("keyed"))
    store = KeyStore(data)
    made = {
        scope.value: store.create(scope.value, ["default"], scope)[1]
        for scope in (Scope.READ, Scope.WRITE, Scope.ADMIN)
    }
    store.close()
    return data, made


@pytest.fixture(scope="module")
def keyed(keys: tuple[Path, dict[str, str]]) -> Iterator[TestClient]:
    with _client(keys[0]) as live:
        yield live


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with _client(_data_root(tmp_path_factory.mktemp("open"))) as live:
        yield live


def _manifest(client: TestClient, path: str, key: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    manifest: dict[str, Any] = response.json()
    return manifest


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("scope", ["read", "write"])
def test_a_key_below_admin_sees_the_manifest_without_library_versions(
    keyed: TestClient, keys: tuple[Path, dict[str, str]], path: str, scope: str
) -> None:
    manifest = _manifest(keyed, path, keys[1][scope])
    assert manifest["libraries"] is None
    # The rest of the manifest is all there.
    assert manifest["chunk_count"] > 0
    assert {d["doc_id"] for d in manifest["documents"]} == set(FILES)
    assert manifest["embedder"]["model_id"] == FakeEmbedder().identity.model_id


@pytest.mark.parametrize("path", ROUTES)
def test_an_admin_key_sees_the_library_versions(
    keyed: TestClient, keys: tuple[Path, dict[str, str]], path: str
) -> None:
    manifest = _manifest(keyed, path, keys[1]["admin"])
    assert manifest["libraries"]["python"]
    assert manifest["chunk_count"] > 0


@pytest.mark.parametrize("path", ROUTES)
def test_a_server_without_keys_shows_the_library_versions(
    open_server: TestClient, path: str
) -> None:
    assert _manifest(open_server, path)["libraries"]["python"]


def _key(scope: Scope) -> KeyRecord:
    return KeyRecord("k", "0" * 12, scope, "*", datetime.now(UTC))


def test_only_admins_and_keyless_servers_see_the_details() -> None:
    assert shows_details(None)
    assert shows_details(_key(Scope.ADMIN))
    assert not shows_details(_key(Scope.WRITE))
    assert not shows_details(_key(Scope.READ))


def _response(model_id: str) -> IndexResponse:
    return IndexResponse.model_validate(
        {
            "version": "v1",
            "schema_version": 1,
            "embedder": {
                "model_id": model_id,
                "weights_sha256": "0" * 64,
                "dimension": 8,
                "max_tokens": 128,
            },
            "chunking": {"size": 200, "overlap": 20, "max_tokens": 128},
            "vector_index": {"kind": "flat", "lists": 0, "probes": 0},
            "documents": [],
            "chunk_count": 0,
            "created_at": "2024-01-01T00:00:00Z",
            "libraries": {"python": "3.11.9"},
        }
    )


@pytest.mark.parametrize(
    ("model_id", "shown"),
    [
        ("/srv/chancery/models/minilm-tuned", "minilm-tuned"),
        ("C:\\models\\minilm-tuned", "minilm-tuned"),
        ("sentence-transformers/all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"),
    ],
)
def test_a_local_model_folder_is_named_without_its_path(model_id: str, shown: str) -> None:
    trimmed = without_details(_response(model_id))
    assert trimmed.embedder.model_id == shown
    assert trimmed.libraries is None
    assert trimmed.model_dump(exclude={"embedder", "libraries"}) == _response(model_id).model_dump(
        exclude={"embedder", "libraries"}
    )
