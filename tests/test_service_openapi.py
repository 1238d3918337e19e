"""The published API description: every route is listed, with typed bodies and JSON errors, and
the request schemas state the limits the server enforces."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service import access
from service.build import build_app
from service.collections import NAME_PATTERN, RESERVED_NAMES
from service.keys import KeyStore
from service.routers.openapi import BEARER
from service.schemas import MAX_DOC_NAME_CHARS, MAX_DOCS, MAX_QUESTION_CHARS, NOT_BLANK
from service.settings import Settings
from tests.fakes import FakeEmbedder

_ACCESS = {"401", "403", "429"}
"""The access check's answers: no or an invalid key, a key that does not allow it, too many
requests. Every route but the health checks can give them."""
_READ = {"404", "413", "422", "503", *_ACCESS}
_NAMED = _READ
"""Under /v1/collections/{name}, a listing can also be a 404 (no such collection) or a 422 (a
malformed name)."""
_JOB = {"404", "409", "413", "422", "503", *_ACCESS}
_ASK = {"400", *_READ}
"""An answer can also be a 400: a generative one asked of a server without an LLM."""
_NAMED_ASK = {"400", *_NAMED}
_PNG = "image/png"
"""A page image: its 200 is a PNG, not a JSON model."""
_NOT_MODIFIED = "304"
_IMAGE = {_NOT_MODIFIED, *_READ}
"""A page image can also be a 304 (no body): the If-None-Match it was asked with is current."""
ROUTES = {
    ("post", "/v1/ask"): ("200", "AskResponse", _ASK),
    ("post", "/v1/search"): ("200", "SearchResponse", _READ),
    ("get", "/v1/documents"): ("200", "DocumentsResponse", {"413", "503", *_ACCESS}),
    ("get", "/v1/documents/{doc_id}"): ("200", "DocumentDetail", _READ),
    ("get", "/v1/documents/{doc_id}/pages/{number}"): ("200", "PageOut", _READ),
    ("get", "/v1/documents/{doc_id}/pages/{number}/image"): ("200", _PNG, _IMAGE),
    ("get", "/v1/documents/{doc_id}/pages/{number}/highlights"): ("200", "HighlightsOut", _READ),
    ("get", "/v1/index"): ("200", "IndexResponse", {"413", "503", *_ACCESS}),
    ("get", "/v1/collections"): ("200", "CollectionsResponse", {"413", "503", *_ACCESS}),
    ("post", "/v1/collections"): ("201", "CollectionOut", {"409", "413", "422", *_ACCESS}),
    ("delete", "/v1/collections/{name}"): ("204", None, {"404", "409", "413", "422", *_ACCESS}),
    ("post", "/v1/collections/{name}/ask"): ("200", "AskResponse", _NAMED_ASK),
    ("post", "/v1/collections/{name}/search"): ("200", "SearchResponse", _NAMED),
    ("get", "/v1/collections/{name}/documents"): ("200", "DocumentsResponse", _NAMED),
    ("get", "/v1/collections/{name}/documents/{doc_id}"): ("200", "DocumentDetail", _NAMED),
    ("get", "/v1/collections/{name}/documents/{doc_id}/pages/{number}"): (
        "200",
        "PageOut",
        _NAMED,
    ),
    ("get", "/v1/collections/{name}/documents/{doc_id}/pages/{number}/image"): (
        "200",
        _PNG,
        _IMAGE,
    ),
    ("get", "/v1/collections/{name}/documents/{doc_id}/pages/{number}/highlights"): (
        "200",
        "HighlightsOut",
        _NAMED,
    ),
    ("get", "/v1/collections/{name}/index"): ("200", "IndexResponse", _NAMED),
    ("post", "/v1/collections/{name}/documents"): ("202", "JobAccepted", _JOB),
    ("delete", "/v1/collections/{name}/documents/{doc_id}"): ("202", "JobAccepted", _JOB),
    ("get", "/v1/jobs/{job_id}"): ("200", "JobOut", {"404", "413", "422", *_ACCESS}),
    ("get", "/healthz"): ("200", "HealthResponse", {"413"}),
    ("get", "/readyz"): ("200", "ReadyResponse", {"413", "503"}),
    ("post", "/v1/chat/completions"): (
        "200",
        "ChatCompletion",
        {"400", "404", "413", "503", *_ACCESS},
    ),
    ("get", "/v1/models"): ("200", "ModelList", {"413", "503", *_ACCESS}),
}
"""Each route, its success status and model, and the error statuses it can answer."""
OPENAI_ROUTES = {"/v1/chat/completions", "/v1/models"}
"""Their errors are OpenAI's envelope (ChatError), but for the body limit's 413 and the access
check's answers, which come before any route."""


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("openapi")
    app = build_app(Settings(index_dir=root), embedder=FakeEmbedder())
    with TestClient(app) as client:
        assert client.get("/docs").status_code == 200
        published: dict[str, Any] = client.get("/openapi.json").json()
        return published


def _ref(model: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model}"}


def _schema(operation: dict[str, Any], status: str) -> dict[str, Any]:
    schema: dict[str, Any] = operation["responses"][status]["content"]["application/json"]["schema"]
    return schema


def test_openapi_lists_every_route_with_its_models_and_errors(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    listed = {(method, path) for path, methods in paths.items() for method in methods}
    assert listed == set(ROUTES)
    for (method, path), (success, model, errors) in ROUTES.items():
        operation = paths[path][method]
        if model is None:
            assert "content" not in operation["responses"][success]
        elif model == _PNG:
            content = operation["responses"][success]["content"]
            assert content == {_PNG: {"schema": {"type": "string", "format": "binary"}}}
        else:
            assert _schema(operation, success) == {"$ref": f"#/components/schemas/{model}"}
        assert set(operation["responses"]) == {success, *errors}, f"{method.upper()} {path}"
        for status in errors - {_NOT_MODIFIED}:
            if (method, path) == ("post", "/v1/chat/completions") and status == "403":
                # The access check's, or the route's own for a model the key may not use.
                assert _schema(operation, status) == {
                    "anyOf": [_ref("ChatError"), _ref("ErrorOut")]
                }
                continue
            openai = path in OPENAI_ROUTES and status not in {"413", *_ACCESS}
            assert _schema(operation, status) == _ref("ChatError" if openai else "ErrorOut")
        if _NOT_MODIFIED in errors:
            assert "content" not in operation["responses"][_NOT_MODIFIED]
        if method == "post" and not path.endswith("/documents"):
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            assert body["$ref"].startswith("#/components/schemas/")
        if success == "202":
            assert set(operation["responses"]["202"]["headers"]) == {"Location"}
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


@pytest.mark.parametrize("path", ["/v1/ask", "/v1/collections/{name}/ask"])
def test_ask_states_that_it_can_answer_with_server_sent_events(
    spec: dict[str, Any], path: str
) -> None:
    content = spec["paths"][path]["post"]["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/event-stream"}
    events = content["text/event-stream"]["schema"]["oneOf"]
    names = [e["properties"]["event"]["const"] for e in events]
    assert names == ["passages", "sentence", "abstained", "done", "error"]
    # Each event's data refers only to models the document lists.
    refs = re.findall(r'"#/components/schemas/(\w+)"', json.dumps(events))
    assert refs and set(refs) <= set(spec["components"]["schemas"])
    stream = spec["components"]["schemas"]["AskRequest"]["properties"]["stream"]
    assert (stream["type"], stream["default"]) == ("boolean", False)
    assert "stream" not in spec["components"]["schemas"]["SearchRequest"]["properties"]


def test_search_mode_is_an_enumeration(spec: dict[str, Any]) -> None:
    mode = spec["components"]["schemas"]["SearchRequest"]["properties"]["mode"]
    assert mode["$ref"] == "#/components/schemas/Mode"
    assert spec["components"]["schemas"]["Mode"]["enum"] == ["hybrid", "dense", "bm25"]


def test_the_upload_body_states_its_field_and_limits(spec: dict[str, Any]) -> None:
    body = spec["paths"]["/v1/collections/{name}/documents"]["post"]["requestBody"]
    assert body["required"] is True
    schema = body["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["files"] and schema["additionalProperties"] is False
    files = schema["properties"]["files"]
    assert files["items"] == {"type": "string", "format": "binary"}
    assert (files["minItems"], files["maxItems"]) == (1, Settings().max_upload_files)
    assert "20 files and 512 MiB in all, each at most 200 MiB" in body["description"]


def test_collection_names_are_stated_where_they_are_taken(spec: dict[str, Any]) -> None:
    created = spec["components"]["schemas"]["CollectionCreate"]
    assert created["additionalProperties"] is False and created["required"] == ["name"]
    stated = [created["properties"]["name"]]
    for path, methods in spec["paths"].items():
        for operation in methods.values():
            stated += [p["schema"] for p in operation.get("parameters", []) if p["name"] == "name"]
            assert ("{name}" in path) == any(
                p["name"] == "name" for p in operation.get("parameters", [])
            ), path
    assert len(stated) == 1 + 11  # the create body and the eleven operations under {name}
    for schema in stated:
        assert schema["pattern"] == NAME_PATTERN
        assert set(schema["not"]["enum"]) == RESERVED_NAMES


_EXAMPLES = {"name": "default", "doc_id": "report.pdf", "number": "1", "job_id": "0" * 32}
"""A value for each path parameter, to ask the access policy about a concrete request."""


def _needs_key(method: str, template: str) -> bool:
    path = re.sub(r"\{(\w+)\}", lambda found: _EXAMPLES[found.group(1)], template)
    rule, _ = access.rule_for(method.upper(), path)
    return rule.scope is not None


def test_every_operation_the_access_policy_protects_states_its_key_and_refusals(
    spec: dict[str, Any],
) -> None:
    scheme = spec["components"]["securitySchemes"][BEARER]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    protected = set()
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            needs = _needs_key(method, path)
            responses = operation["responses"]
            where = f"{method.upper()} {path}"
            assert (operation.get("security") == [{BEARER: []}]) is needs, where
            assert (set(responses) >= _ACCESS) is needs, where
            assert needs or not _ACCESS & set(responses), where
            if needs:
                protected.add((method, path))
                assert "WWW-Authenticate" in responses["401"]["headers"]
                assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
                assert "Retry-After" in responses["429"]["headers"]
                assert "rate limit" in responses["429"]["description"]
                assert "failed attempts" in responses["429"]["description"]
                assert "scope" in responses["403"]["description"]
    # Every route is protected but the health checks (the web page and docs are not listed).
    assert {path for _, path in set(ROUTES) - protected} == {"/healthz", "/readyz"}


def test_the_job_queues_429_keeps_its_own_description(spec: dict[str, Any]) -> None:
    refused = spec["paths"]["/v1/collections/{name}/documents"]["post"]["responses"]["429"]
    assert "rate limit" in refused["description"]
    assert "as many jobs are waiting as the server queues" in refused["description"]
    assert _schema({"responses": {"429": refused}}, "429") == _ref("ErrorOut")


def test_the_index_manifest_states_that_library_versions_are_for_admins(
    spec: dict[str, Any],
) -> None:
    manifest = spec["components"]["schemas"]["IndexResponse"]
    assert "libraries" not in manifest["required"]
    libraries = manifest["properties"]["libraries"]
    assert {"type": "null"} in libraries["anyOf"]
    assert "admin" in libraries["description"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_pages_load_nothing_from_outside(tmp_path: Path, page: str) -> None:
    """Air-gapped sites reach no CDN: every script, style and icon the pages name is served
    here, and answers without a key even when keys exist."""
    settings = Settings(index_dir=tmp_path / "index", data_dir=tmp_path / "data")
    keys = KeyStore(settings.data_dir)
    keys.create("ops", "*", "admin")
    keys.close()
    app = build_app(settings, embedder=FakeEmbedder())
    with TestClient(app) as client:
        html = client.get(page)
        assert html.status_code == 200
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text)
        assets += re.findall(r"""(?:url|Url): *["']([^"']+)["']""", html.text)
        assert not [url for url in assets if "://" in url or url.startswith("//")]
        files = [url for url in assets if url.startswith("/docs-files/")]
        assert any(url.endswith(".js") for url in files)
        for url in files:
            served = client.get(url)
            assert served.status_code == 200, url
            assert len(served.content) > 1000, url
        assert client.get("/v1/documents").status_code == 401  # the keys are in force
