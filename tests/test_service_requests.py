"""Bad requests in process: each is a 4xx with a readable detail, never a 500 or a bare 400.

The app runs with a fake embedder over a two-document index, so these take milliseconds; the
live server's own cases (bodies that never end, paths as uvicorn decodes them) are in
test_service_fuzz.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient

from index.store import ChunkingParameters
from index.update import update_index
from ingest.chunking import ChunkingConfig, chunk_document
from ingest.loaders import load_bytes
from service.build import build_app
from service.schemas import NOT_BLANK
from service.settings import Settings
from tests.conftest import WhitespaceTokenizer
from tests.fakes import FakeEmbedder

CONFIG = ChunkingConfig(size=40, overlap=8, max_tokens=60)
TEXTS = {
    "energy.txt": "Gas storage must be full before winter. The regulator checks it monthly.\f"
    "Electricity imports come from Velmark. Wind farms grow each year.",
    "border.txt": "Astoria has four border crossings with Northland. Trucks wait two hours.",
}
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def index_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("requests-index")
    documents = []
    for name, text in TEXTS.items():
        document = load_bytes(name, text.encode()).document
        documents.append((document, chunk_document(document, WhitespaceTokenizer(), CONFIG)))
    chunking = ChunkingParameters(CONFIG.size, CONFIG.overlap, CONFIG.max_tokens)
    update_index(root, documents, FakeEmbedder(), chunking)
    return root


def _client(root: Path, **settings: Any) -> TestClient:
    app = build_app(Settings(index_dir=root, **settings), embedder=FakeEmbedder())
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(index_root: Path) -> Iterator[TestClient]:
    with _client(index_root, max_body_bytes=64 * 1024) as http:
        yield http


def _detail(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail.strip()
    return detail


# -- text that no encoder accepts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"question": "NATO \\ud800 Serbia"}', "question"),
        (b'{"question": "NATO \\udfff"}', "question"),
        (b'{"question": "NATO \xed\xa0\x80 Serbia"}', "question"),  # a surrogate's UTF-8 bytes
        (b'{"question": "NATO", "docs": ["energy.txt", "a\\ud800"]}', "docs.1"),
    ],
)
@pytest.mark.parametrize("route", ["/v1/ask", "/v1/search"])
def test_a_lone_surrogate_is_a_422(client: TestClient, route: str, body: bytes, where: str) -> None:
    detail = _detail(client.post(route, content=body, headers=JSON), 422)
    assert detail.startswith(f"{where}: the text contains invalid Unicode"), detail


def test_a_valid_surrogate_pair_is_one_character(client: TestClient) -> None:
    response = client.post(
        "/v1/search", content=b'{"question": "gas \\ud83d\\ude00"}', headers=JSON
    )
    assert response.status_code == 200, response.text


def test_invalid_utf8_is_a_422(client: TestClient) -> None:
    response = client.post("/v1/ask", content=b'{"question": "NATO \xff"}', headers=JSON)
    assert "not valid UTF-8" in _detail(response, 422)


# -- JSON the parser gives up on -----------------------------------------------------------------


@pytest.mark.parametrize("depth", [30_000, 100_000])
def test_deep_nesting_is_a_422(index_root: Path, depth: int) -> None:
    with _client(index_root, max_body_bytes=1024 * 1024) as http:
        for opening, closing in (b"[", b"]"), (b'{"a":', b"}"):
            body = opening * depth + closing * depth
            response = http.post("/v1/ask", content=body, headers=JSON)
            assert "nests arrays or objects too deeply" in _detail(response, 422)


def test_a_number_too_long_to_convert_is_a_422(client: TestClient) -> None:
    body = b'{"question": "gas", "k": ' + b"7" * 5000 + b"}"
    detail = _detail(client.post("/v1/ask", content=body, headers=JSON), 422)
    assert detail.startswith("the request body is not valid JSON") and "sys." not in detail


# -- strict, closed request models ---------------------------------------------------------------


@pytest.mark.parametrize("k", [True, False, "5", 5.5, None, [5], {"k": 5}, float("inf")])
def test_k_must_be_a_number_without_a_fraction(client: TestClient, k: Any) -> None:
    body = json.dumps({"question": "gas storage", "k": k}).encode()
    assert _detail(client.post("/v1/ask", content=body, headers=JSON), 422).startswith("k: ")


@pytest.mark.parametrize("stream", ["true", 1, 0, None, [True]])
def test_stream_must_be_a_boolean(client: TestClient, stream: Any) -> None:
    body = json.dumps({"question": "gas storage", "stream": stream}).encode()
    assert _detail(client.post("/v1/ask", content=body, headers=JSON), 422).startswith("stream: ")


def test_k_written_with_a_zero_fraction_is_that_integer(client: TestClient) -> None:
    # JSON has one kind of number: to JSON Schema, and so to the published schema, 3.0 is 3.
    response = client.post("/v1/search", json={"question": "gas storage", "k": 3.0})
    assert response.status_code == 200, response.text
    assert len(response.json()["hits"]) <= 3


@pytest.mark.parametrize(
    "body",
    [
        {"quesiton": "gas storage"},
        {"question": "gas storage", "top_k": 3},
        {"question": "gas storage", "mode": "dense"},  # /v1/ask has no mode
    ],
)
def test_an_unknown_field_is_a_422_that_names_it(client: TestClient, body: dict[str, Any]) -> None:
    unknown = next(iter(set(body) - {"question"}))
    detail = _detail(client.post("/v1/ask", json=body), 422)
    assert f"{unknown}: Extra inputs are not permitted" in detail


@pytest.mark.parametrize(
    ("question", "status"),
    [
        ("\x1c\x1d\x1e\x1f", 422),  # blank to str.strip() and to the published pattern
        ("\u3000\u2028\xa0\t", 422),
        ("\u200b", 200),  # a zero-width space is not white space to either
        (" " * 1999 + "a", 200),
        (" " * 2000 + "a", 422),  # the limit counts what was sent, as the schema's maxLength
    ],
)
def test_blank_and_length_follow_the_published_schema(
    client: TestClient, question: str, status: int
) -> None:
    response = client.post("/v1/search", json={"question": question})
    assert response.status_code == status, response.text


def test_the_blank_pattern_is_str_strip_in_every_regex_engine() -> None:
    # Python's re, and the Rust regex that jsonschema-rs (and so schemathesis) validates with.
    rust = jsonschema_rs.validator_for({"type": "string", "pattern": NOT_BLANK})
    python = re.compile(NOT_BLANK)
    for code in range(0x10000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        kept = char.strip() != ""
        assert (python.search(char) is not None) == kept, hex(code)
        assert rust.is_valid(char) == kept, hex(code)


# -- body size -----------------------------------------------------------------------------------


def test_a_declared_length_over_the_limit_is_a_413(client: TestClient) -> None:
    response = client.post("/v1/ask", content=b" " * (64 * 1024 + 1), headers=JSON)
    assert _detail(response, 413) == "the request body has 65537 bytes; the limit is 65536"
    assert response.headers["connection"] == "close"


def test_a_streamed_body_over_the_limit_is_a_413(client: TestClient) -> None:
    def body() -> Iterator[bytes]:
        for _ in range(5):
            yield b" " * 16384

    response = client.post("/v1/ask", content=body(), headers=JSON)
    assert _detail(response, 413) == "the request body is over the limit of 65536 bytes"
    assert response.headers["connection"] == "close"


@pytest.mark.parametrize("streamed", [False, True])
def test_a_body_of_exactly_the_limit_is_read(index_root: Path, streamed: bool) -> None:
    question = b'{"question": "gas storage"}'
    with _client(index_root, max_body_bytes=200) as http:
        for size, status in (200, 200), (201, 413):
            padded = question + b" " * (size - len(question))
            content: bytes | Iterator[bytes] = (
                iter([padded[:100], padded[100:]]) if streamed else padded
            )
            response = http.post("/v1/search", content=content, headers=JSON)
            assert response.status_code == status, (size, response.text)


def test_the_limit_applies_to_routes_without_a_body(client: TestClient) -> None:
    response = client.request("GET", "/healthz", content=b"x" * (64 * 1024 + 1))
    assert response.status_code == 413, response.text


# -- HTTP errors keep their headers --------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v1/ask", "POST"),
        ("PUT", "/v1/search", "POST"),
        ("DELETE", "/v1/documents", "GET"),
        ("POST", "/v1/documents/energy.txt/pages/1", "GET"),
        ("OPTIONS", "/healthz", "GET"),
        # A route per method on these paths: Allow names them all, not the first route's.
        ("PUT", "/v1/collections", "GET, POST"),
        ("PATCH", "/v1/collections/default/documents", "GET, POST"),
        ("PUT", "/v1/collections/default/documents/energy.txt", "DELETE, GET"),
        ("GET", "/v1/collections/default", "DELETE"),
    ],
)
def test_405_says_which_methods_are_allowed(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path)
    _detail(response, 405)
    assert response.headers["allow"] == allowed


def test_unknown_route_is_a_json_404(client: TestClient) -> None:
    _detail(client.get("/v1/nowhere"), 404)


def test_the_index_manifest_keeps_its_shape(client: TestClient) -> None:
    body = client.get("/v1/index").json()
    assert set(body) == {
        "version",
        "schema_version",
        "embedder",
        "chunking",
        "vector_index",
        "documents",
        "chunk_count",
        "created_at",
        "libraries",
    }
    assert [d["doc_id"] for d in body["documents"]] == sorted(TEXTS)
    assert set(body["documents"][0]) == {
        "doc_id",
        "file_name",
        "title",
        "sha256",
        "pages",
        "chunks",
    }
    assert body["chunking"] == {"size": 40, "overlap": 8, "max_tokens": 60}
