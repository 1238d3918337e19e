"""The published API description: every route is listed, with typed bodies and JSON errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.fakes import FakeEmbedder

ROUTES = {
    ("post", "/v1/ask"): "AskResponse",
    ("post", "/v1/search"): "SearchResponse",
    ("get", "/v1/documents"): "DocumentsResponse",
    ("get", "/v1/documents/{doc_id}"): "DocumentDetail",
    ("get", "/v1/documents/{doc_id}/pages/{number}"): "PageOut",
    ("get", "/healthz"): None,
    ("get", "/readyz"): None,
}
"""Each route and the model of its 200 response (None: a plain JSON object)."""


def _schema(operation: dict[str, Any], status: str) -> dict[str, Any]:
    schema: dict[str, Any] = operation["responses"][status]["content"]["application/json"]["schema"]
    return schema


def test_openapi_lists_every_route_with_its_models(tmp_path: Path) -> None:
    app = create_app(Settings(index_dir=tmp_path), embedder=FakeEmbedder())
    with TestClient(app) as client:
        spec = client.get("/openapi.json").json()
        assert client.get("/docs").status_code == 200
    paths = spec["paths"]
    for (method, path), model in ROUTES.items():
        assert method in paths.get(path, {}), f"{method.upper()} {path} is not in /openapi.json"
        operation = paths[path][method]
        if model is not None:
            assert _schema(operation, "200") == {"$ref": f"#/components/schemas/{model}"}
    for method, path in ROUTES:
        if method == "post":
            operation = paths[path]["post"]
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            assert body["$ref"].startswith("#/components/schemas/")
            assert "$ref" in _schema(operation, "200"), f"POST {path} has no response model"
            for status in ("404", "422", "503"):
                assert _schema(operation, status) == {"$ref": "#/components/schemas/ErrorOut"}
    assert spec["components"]["schemas"]["ErrorOut"]["required"] == ["detail"]
