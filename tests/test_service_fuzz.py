"""The live service against hostile input: no request gets a 5xx or breaks the published schema.

The server is the real one (`chancery serve`: real model, uvicorn) over a data root whose
collection `default` holds one sample document, so requests reach the tokenizer, SQLite, the
answerer, the upload parser and the job runner, not stand-ins. Schemathesis sends every
operation its boundary cases and a bounded number of generated requests, valid and invalid, with
every built-in check on each response; the collection name it tries first is the documented
example, `default`, so uploads and deletions reach a real collection (the collections it creates
stay few: one per generated request). The requests it cannot make (a body that never ends, a
path uvicorn decodes) are tested one by one after it.

The data root has an API key, so the server asks for one as a deployment does: every request
carries an admin key for every collection, and Schemathesis's `ignored_auth` check sends each
operation again without it, and with a made-up one, expecting the 401 the description states.
"""

from __future__ import annotations

import collections
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from service.build import build_app
from service.keys import KeyStore, Scope
from service.settings import Settings
from tests.conftest import SAMPLES
from tests.fakes import FakeEmbedder
from tests.served import served_data_root

SAMPLE = SAMPLES / "northland-energy-brief.md"
DOC_ID = SAMPLE.name
STARTUP_SECONDS = 180
REQUEST_SECONDS = 60
"""Generous, so that a busy machine cannot fail a test; no test measures time."""
EXAMPLES_PER_OPERATION = 30
LIMIT: int = Settings.model_fields["max_body_bytes"].default
NO_BRAKE = {"CHANCERY_AUTH_FAILURES": str(10**9)}
"""`ignored_auth` fails to authenticate on purpose, many times from one address, which would
otherwise have the server refuse that address (429) for every request after, a key or not."""


@dataclass
class _AdminKey:
    """The key the server's data root is given before it starts, once the server runs: known at
    run time only, where Schemathesis's auth (below) is set up when the tests are collected."""

    token: str = ""

    def create(self, data_root: Path) -> None:
        store = KeyStore(data_root)
        try:
            self.token = store.create("fuzz", "*", Scope.ADMIN)[1]
        finally:
            store.close()

    @property
    def headers(self) -> dict[str, str]:
        assert self.token, "the server is not running"
        return {"Authorization": f"Bearer {self.token}"}


ADMIN = _AdminKey()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("fuzz")
    with served_data_root(
        [SAMPLE], root, startup_seconds=STARTUP_SECONDS, prepare=ADMIN.create, env=NO_BRAKE
    ) as url:
        yield url


@pytest.fixture(scope="module")
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=REQUEST_SECONDS, headers=ADMIN.headers) as client:
        yield client


# -- schemathesis --------------------------------------------------------------------------------


def _published_spec() -> dict[str, Any]:
    # Builds the description from the routes alone; no model loads and no index is opened.
    spec: dict[str, Any] = build_app(
        Settings(index_dir=Path("unused")), embedder=FakeEmbedder()
    ).openapi()
    return spec


ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
"""Schemathesis's default for valid data (a 5xx still fails its own check)."""

# Schemathesis's `parametrize` needs the operations when pytest collects the tests, before any
# server runs (its fixture-based loader breaks on pytest 9.2), so the description is built here;
# the first test checks that the live server publishes exactly this one.
schema = schemathesis.openapi.from_dict(
    _published_spec(),
    config=schemathesis.Config.from_dict(
        {
            # The fuzzer creates collections and then reads from them: a collection with no
            # documents answers the documented 503 ("no documents yet; upload some"), which is
            # no crash. Any other 5xx still fails.
            "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}},
            "operations": [
                {
                    # More files than `maxItems` is refused with the documented 413, the status
                    # of every upload limit, where other schema violations get 422.
                    "include-name": "POST /v1/collections/{name}/documents",
                    "checks": {
                        "negative_data_rejection": {
                            # 401: a negative case may leave out the key, or send a made-up one.
                            "expected-statuses": ["401", "404", "409", "413", "422", "429"]
                        }
                    },
                },
                {
                    # A valid request for the generative answerer gets the documented 400 from
                    # a server without an LLM, as this one is.
                    "include-name-regex": r"^POST /v1(/collections/\{name\})?/ask$",
                    "checks": {
                        "positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "400"]}
                    },
                },
                {
                    # The schema cannot say that the last message must be the user's, with at
                    # most 2,000 characters, which the documented 400 refuses; nor can it say
                    # that this server has no LLM for `answerer: generative` (400 too).
                    "include-name": "POST /v1/chat/completions",
                    "checks": {
                        "positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "400"]}
                    },
                },
                {
                    # `start` without `end` (or both with `quote`) fits the schema, which cannot
                    # say "both or neither", and gets the documented 422.
                    "include-name-regex": r"/highlights$",
                    "checks": {
                        "positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "422"]}
                    },
                },
            ],
        }
    ),
)


@schema.auth()
class _Bearer:
    """Every generated request carries the admin key (a negative case may leave it out)."""

    def get(self, case: schemathesis.Case[Any], context: schemathesis.AuthContext) -> str:
        return ADMIN.token

    def set(
        self, case: schemathesis.Case[Any], data: str, context: schemathesis.AuthContext
    ) -> None:
        case.headers["Authorization"] = f"Bearer {data}"


def test_the_live_server_publishes_the_fuzzed_description(base_url: str) -> None:
    # The description is public: no key needed.
    with httpx.Client(base_url=base_url, timeout=REQUEST_SECONDS) as anonymous:
        assert anonymous.get("/openapi.json").json() == _published_spec()


def test_without_the_key_a_route_is_401_and_says_how_to_authenticate(http: httpx.Client) -> None:
    response = http.post("/v1/search", json={"question": "gas"}, headers={"Authorization": ""})
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == 'Bearer realm="chancery"'
    assert "API key" in response.json()["detail"]


@pytest.fixture(scope="module")
def sent() -> Iterator[collections.Counter[str]]:
    """Requests made per operation; each operation must have been exercised, not skipped."""
    counts: collections.Counter[str] = collections.Counter()
    yield counts
    operations = {
        f"{method.upper()} {path}"
        for path, methods in _published_spec()["paths"].items()
        for method in methods
    }
    assert set(counts) == operations, sorted(operations ^ set(counts))


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_request_gets_a_server_error_or_breaks_the_schema(
    case: schemathesis.Case[Any], base_url: str, sent: collections.Counter[str]
) -> None:
    sent[case.operation.label] += 1
    # Every check enabled by default: no 5xx, status codes, content types, headers and bodies as
    # documented, invalid data refused, valid data accepted, 405 with Allow for other methods.
    case.call_and_validate(base_url=base_url, timeout=REQUEST_SECONDS)


# -- what the fuzzer cannot send -----------------------------------------------------------------


def _raw_exchange(base_url: str, head: bytes, body_parts: list[bytes]) -> tuple[int, bytes]:
    """Send a request head and part of a body, never the end of it; return the answer."""
    address = urlsplit(base_url)
    with socket.create_connection(
        (address.hostname, address.port), timeout=REQUEST_SECONDS
    ) as connection:
        connection.sendall(head)
        for part in body_parts:
            connection.sendall(part)
        # A server waiting for the rest of the body never answers, and the read times out.
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, answer


def _head(extra: str) -> bytes:
    # With the key: the access check comes before the body limit, and would answer 401 first.
    return (
        "POST /v1/ask HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {ADMIN.token}\r\n{extra}\r\n\r\n"
    ).encode()


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(
    base_url: str,
) -> None:
    status, answer = _raw_exchange(base_url, _head("Content-Length: 104857600"), [])
    assert status == 413, answer
    assert f"the limit is {LIMIT}".encode() in answer and b'{"detail":' in answer
    assert b"connection: close" in answer.lower()


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def test_a_chunked_body_is_refused_once_it_passes_the_limit(base_url: str) -> None:
    # Exactly the limit, then one byte more and no closing chunk: the server has to read all of
    # it to pass the limit, so nothing sent stays unread when it closes the connection.
    parts = [_chunk(b"x" * LIMIT), _chunk(b"x")]
    status, answer = _raw_exchange(base_url, _head("Transfer-Encoding: chunked"), parts)
    assert status == 413, answer
    assert f"over the limit of {LIMIT} bytes".encode() in answer


def test_a_chunked_body_under_the_limit_is_answered(http: httpx.Client) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"question": "Where does the'
        yield b' gas come from?", "k": 3}'

    response = http.post("/v1/search", content=body(), headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.request.headers.get("transfer-encoding") == "chunked"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/documents/%ED%A0%80", 404),  # the UTF-8 bytes of a lone surrogate
        ("/v1/documents/%ED%A0%80/pages/1", 404),
        ("/v1/documents/%FF%FE", 404),
        (f"/v1/documents/{DOC_ID}/pages/%ED%A0%80", 422),
        (f"/v1/documents/{DOC_ID}/pages/-1", 404),
        (f"/v1/documents/{DOC_ID}/pages/{10**30}", 404),
        (f"/v1/documents/{DOC_ID}/pages/{'9' * 5000}", 422),
        (f"/v1/documents/{DOC_ID}/pages/1.5", 422),
        (f"/v1/documents/{'x' * 5000}", 404),
    ],
)
def test_odd_path_parameters_get_a_4xx_with_a_detail(
    http: httpx.Client, path: str, status: int
) -> None:
    response = http.get(path)
    assert response.status_code == status, response.text
    assert response.json()["detail"].strip()
