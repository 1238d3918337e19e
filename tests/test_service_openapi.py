"""The published API description: every route is listed, with typed bodies and JSON errors, and
the request schemas state the limits the server enforces."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.build import build_app
from service.schemas import MAX_DOC_NAME_CHARS, MAX_DOCS, MAX_QUESTION_CHARS, NOT_BLANK
from service.settings import Settings
from tests.fakes import FakeEmbedder

ROUTES = {
    ("post", "/v1/ask"): ("AskResponse", {"404", "413", "422", "503"}),
    ("post", "/v1/search"): ("SearchResponse", {"404", "413", "422", "503"}),
    ("get", "/v1/documents"): ("DocumentsResponse", {"413", "503"}),
    ("get", "/v1/documents/{doc_id}"): ("DocumentDetail", {"404", "413", "422", "503"}),
    ("get", "/v1/documents/{doc_id}/pages/{number}"): ("PageOut", {"404", "413", "422", "503"}),
    ("get", "/v1/index"): ("IndexResponse", {"413", "503"}),
    ("get", "/healthz"): ("HealthResponse", {"413"}),
    ("get", "/readyz"): ("ReadyResponse", {"413", "503"}),
}
"""Each route, the model of its 200 response and the error statuses it can answer."""


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("openapi")
    app = build_app(Settings(index_dir=root), embedder=FakeEmbedder())
    with TestClient(app) as client:
        assert client.get("/docs").status_code == 200
        published: dict[str, Any] = client.get("/openapi.json").json()
        return published


def _schema(operation: dict[str, Any], status: str) -> dict[str, Any]:
    schema: dict[str, Any] = operation["responses"][status]["content"]["application/json"]["schema"]
    return schema


def test_openapi_lists_every_route_with_its_models_and_errors(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    listed = {(method, path) for path, methods in paths.items() for method in methods}
    assert listed == set(ROUTES)
    for (method, path), (model, errors) in ROUTES.items():
        operation = paths[path][method]
        assert _schema(operation, "200") == {"$ref": f"#/components/schemas/{model}"}
        assert set(operation["responses"]) == {"200", *errors}, f"{method.upper()} {path}"
        for status in errors:
            assert _schema(operation, status) == {"$ref": "#/components/schemas/ErrorOut"}
        if method == "post":
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            assert body["$ref"].startswith("#/components/schemas/")
    schemas = spec["components"]["schemas"]
    assert schemas["ErrorOut"]["required"] == ["detail"]
    # FastAPI's own validation error body is never sent: every 422 is an ErrorOut.
    assert "HTTPValidationError" not in schemas


@pytest.mark.parametrize(("model", "most"), [("AskRequest", 50), ("SearchRequest", 100)])
def test_request_schemas_state_the_limits_the_server_enforces(
    spec: dict[str, Any], model: str, most: int
) -> None:
    schema = spec["components"]["schemas"][model]
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["question"]
    question = schema["properties"]["question"]
    assert question["type"] == "string"
    assert question["minLength"] == 1
    assert question["maxLength"] == MAX_QUESTION_CHARS == 2000
    assert question["pattern"] == NOT_BLANK
    k = schema["properties"]["k"]
    assert (k["type"], k["minimum"], k["maximum"]) == ("integer", 1, most)
    docs, null = schema["properties"]["docs"]["anyOf"]
    assert null == {"type": "null"}
    assert (docs["minItems"], docs["maxItems"]) == (1, MAX_DOCS)
    item = docs["items"]
    assert (item["type"], item["minLength"], item["maxLength"]) == ("string", 1, MAX_DOC_NAME_CHARS)


def test_search_mode_is_an_enumeration(spec: dict[str, Any]) -> None:
    mode = spec["components"]["schemas"]["SearchRequest"]["properties"]["mode"]
    assert mode["$ref"] == "#/components/schemas/Mode"
    assert spec["components"]["schemas"]["Mode"]["enum"] == ["hybrid", "dense", "bm25"]
