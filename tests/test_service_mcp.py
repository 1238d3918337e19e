"""The MCP server through the official SDK's client, over both transports: stdio (`chancery mcp
--collection default` as a child process, as a desktop assistant starts it) and streamable HTTP
(`chancery serve`, whose app mounts the server at /mcp).

Both servers are real (the real model, the sample documents in a data root), so each starts once:
one session per transport makes every call these tests look at, and records what came back; the
tests then read that record. The same tests run on both transports. The audit of calls made with
a key runs on an app of its own, in process, with the fake embedder.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import jsonschema
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, Tool

from service import subprocess_server
from service.audit import AUDIT_DIR, AuditRecord, read_audit
from service.build import build_app
from service.collections import CollectionRegistry
from service.keys import KeyStore, Scope
from service.settings import Settings
from tests.answerer_contract import FILES
from tests.conftest import REPO, SAMPLES
from tests.fakes import FakeEmbedder, build_index
from tests.served import Served

SAMPLE_FILES = sorted(SAMPLES.glob("*.md")) + sorted(SAMPLES.glob("*.pdf"))
QUESTION = "Who is responsible for coordinating the implementation of the strategy?"
ANSWER_DOC = "northland-national-security-strategy.pdf"
ENERGY_DOC = "northland-energy-brief.md"
EMPTY = "empty"
"""A second collection with no documents: the HTTP server serves it, the stdio server does not."""
TOOLS = {"search", "ask", "get_page", "list_documents", "list_collections"}
STARTUP_SECONDS = 180
CALL_SECONDS = 120.0
"""Generous: the first call waits for the model to load on a busy machine. No test measures time."""


@dataclass
class Exchange:
    """What one session asked and what came back."""

    transport: str
    tools: dict[str, Tool] = field(default_factory=dict)
    calls: dict[str, CallToolResult] = field(default_factory=dict)
    pages: list[CallToolResult] = field(default_factory=list)
    """get_page for each citation of the `ask` call, in order."""
    templates: list[str] = field(default_factory=list)
    page_resource: str = ""


CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "ask": ("ask", {"question": QUESTION}),
    "search": ("search", {"question": "gas storage", "k": 3, "docs": [ENERGY_DOC]}),
    "search_default": ("search", {"question": "gas storage", "collection": "default"}),
    "get_page": ("get_page", {"doc_id": ENERGY_DOC, "page": 2}),
    "list_documents": ("list_documents", {}),
    "list_collections": ("list_collections", {}),
    "unknown_collection": ("search", {"question": "gas storage", "collection": "nowhere"}),
    "malformed_collection": ("ask", {"question": "gas storage", "collection": "Not A Name!"}),
    "empty_collection": ("search", {"question": "gas storage", "collection": EMPTY}),
    "page_zero": ("get_page", {"doc_id": ENERGY_DOC, "page": 0}),
    "page_past_end": ("get_page", {"doc_id": ENERGY_DOC, "page": 99}),
    "unknown_document": ("get_page", {"doc_id": "nowhere.pdf", "page": 1}),
    "missing_question": ("ask", {}),
    "blank_question": ("search", {"question": "   "}),
    "k_out_of_range": ("search", {"question": "gas storage", "k": 0}),
    "unknown_answerer": ("ask", {"question": QUESTION, "answerer": "oracle"}),
    "no_llm": ("ask", {"question": QUESTION, "answerer": "generative"}),
}


async def _converse(server: str | StdioServerParameters, transport: str, mode: str) -> Exchange:
    exchange = Exchange(transport)
    async with Client(server, mode=mode, read_timeout_seconds=CALL_SECONDS) as client:
        exchange.tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        for name, (tool, arguments) in CALLS.items():
            exchange.calls[name] = await client.call_tool(tool, arguments)
        for citation in (exchange.calls["ask"].structured_content or {}).get("citations", []):
            arguments = {"doc_id": citation["doc_id"], "page": citation["page"]}
            exchange.pages.append(await client.call_tool("get_page", arguments))
        listed = await client.list_resource_templates()
        exchange.templates = [t.uri_template for t in listed.resource_templates]
        read = await client.read_resource(f"chancery://default/documents/{ENERGY_DOC}/pages/2")
        exchange.page_resource = getattr(read.contents[0], "text", "")
    return exchange


@pytest.fixture(scope="module")
def data_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    data = {"CHANCERY_DATA_DIR": str(tmp_path_factory.mktemp("mcp-data"))}
    for command in (
        ["ingest", *map(str, SAMPLE_FILES), "--collection", "default"],
        ["collections", "create", EMPTY],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "service.cli", *command],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=REPO,
            env=subprocess_server.child_environment(data),
        )
        assert done.returncode == 0, done.stderr
    return data


@pytest.fixture(scope="module")
def http_url(data_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("mcp-log") / "server.log"
    try:
        with subprocess_server.running_server(
            None, log, startup_seconds=STARTUP_SECONDS, cwd=REPO, env=data_env
        ) as url:
            yield url
    except subprocess_server.ServerStartError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module", params=["stdio", "http"])
def exchange(request: pytest.FixtureRequest, data_env: dict[str, str]) -> Exchange:
    if request.param == "http":
        url: str = request.getfixturevalue("http_url")
        # The SDK's default: it asks the server which protocol versions it speaks.
        return anyio.run(_converse, f"{url}/mcp", "http", "auto")
    stdio = StdioServerParameters(
        command=sys.executable,
        args=["-m", "service.cli", "mcp", "--collection", "default"],
        env=subprocess_server.child_environment(data_env),
        cwd=str(REPO),
    )
    # The initialize handshake, as the desktop assistants of 2025 open a session.
    return anyio.run(_converse, stdio, "stdio", "legacy")


def _text(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def _ok(exchange: Exchange, name: str) -> dict[str, Any]:
    result = exchange.calls[name]
    assert not result.is_error, _text(result)
    assert result.structured_content is not None
    return result.structured_content


# -- tools and their schemas ----------------------------------------------------------------------


def test_lists_the_tools_with_their_schemas(exchange: Exchange) -> None:
    assert set(exchange.tools) == TOOLS
    for tool in exchange.tools.values():
        assert tool.description, tool.name
        assert tool.output_schema is not None, tool.name
        assert tool.annotations is not None and tool.annotations.read_only_hint, tool.name
    schemas = {name: tool.input_schema for name, tool in exchange.tools.items()}
    assert schemas["search"]["required"] == ["question"]
    assert set(schemas["search"]["properties"]) == {"question", "k", "collection", "docs"}
    assert schemas["search"]["properties"]["k"]["maximum"] == 100
    assert schemas["ask"]["required"] == ["question"]
    assert set(schemas["ask"]["properties"]) == {"question", "collection", "answerer", "docs"}
    assert sorted(schemas["get_page"]["required"]) == ["doc_id", "page"]
    assert "required" not in schemas["list_documents"]
    ask_output = exchange.tools["ask"].output_schema or {}
    assert {"answer", "abstained", "citations", "answerer", "fallback"} <= set(
        ask_output["properties"]
    )


def test_every_structured_result_fits_its_output_schema(exchange: Exchange) -> None:
    for name, (tool, _) in CALLS.items():
        result = exchange.calls[name]
        if not result.is_error:
            schema = exchange.tools[tool].output_schema
            assert schema is not None
            jsonschema.validate(result.structured_content, schema)


# -- ask: the answer, its citations, verified -----------------------------------------------------


def test_ask_answers_with_citations_as_structured_content(exchange: Exchange) -> None:
    answer = _ok(exchange, "ask")
    assert not answer["abstained"]
    assert "Minister of Defence" in answer["answer"]
    assert answer["answerer"] == "extractive" and answer["fallback"] is None
    assert answer["collection"] == "default"
    citation = answer["citations"][0]
    assert citation["n"] == 1
    assert citation["doc_id"] == citation["doc"] == ANSWER_DOC
    assert citation["title"].startswith("National Security Strategy")
    assert citation["page"] == 3 and citation["page_label"] == "1"
    sentence = answer["answer"][citation["answer_start"] : citation["answer_end"]]
    assert sentence == citation["quote"]  # the extractive answerer quotes its sentence
    assert "[1]" in answer["answer"]


def test_ask_text_block_reads_as_an_answer_with_sources(exchange: Exchange) -> None:
    answer = _ok(exchange, "ask")
    text = _text(exchange.calls["ask"])
    assert text.startswith(answer["answer"])
    assert "Sources:" in text
    citation = answer["citations"][0]
    assert f"page {citation['page']} (printed {citation['page_label']})" in text
    assert citation["quote"] in text


def test_citations_stand_verbatim_on_the_page_get_page_returns(exchange: Exchange) -> None:
    citations = _ok(exchange, "ask")["citations"]
    assert citations and len(exchange.pages) == len(citations)
    for citation, page in zip(citations, exchange.pages, strict=True):
        assert not page.is_error, _text(page)
        stored = page.structured_content or {}
        assert (stored["doc_id"], stored["number"]) == (citation["doc_id"], citation["page"])
        assert stored["label"] == citation["page_label"]
        quoted = stored["text"][citation["quote_start"] : citation["quote_end"]]
        assert quoted == citation["quote"]


# -- search, pages, documents ---------------------------------------------------------------------


def test_search_returns_passages_with_documents_and_pages(exchange: Exchange) -> None:
    found = _ok(exchange, "search")
    passages = found["passages"]
    assert 1 <= len(passages) <= 3
    for passage in passages:
        assert passage["doc_id"] == passage["doc"] == ENERGY_DOC  # the docs filter held
        assert passage["title"] == "Northland Energy Security Brief"
        assert 1 <= passage["page_start"] <= passage["page_end"] <= 3
        assert passage["text"] and isinstance(passage["score"], float)
        assert "page_label" in passage and "heading" in passage
    assert "gas" in " ".join(p["text"] for p in passages).lower()
    assert passages[0]["text"] in _text(exchange.calls["search"])
    unfiltered = _ok(exchange, "search_default")
    assert len(unfiltered["passages"]) == 10 and unfiltered["collection"] == "default"


def test_get_page_returns_the_stored_text_and_label(exchange: Exchange) -> None:
    page = _ok(exchange, "get_page")
    assert (page["doc_id"], page["doc"], page["number"]) == (ENERGY_DOC, ENERGY_DOC, 2)
    assert page["text"] and page["text"] in _text(exchange.calls["get_page"])
    assert exchange.page_resource == page["text"]


def test_lists_documents_and_collections(exchange: Exchange) -> None:
    documents = {d["doc_id"]: d for d in _ok(exchange, "list_documents")["documents"]}
    assert set(documents) == {path.name for path in SAMPLE_FILES}
    assert documents[ENERGY_DOC]["pages"] == 3
    assert documents[ANSWER_DOC]["title"] in _text(exchange.calls["list_documents"])
    collections = [c["name"] for c in _ok(exchange, "list_collections")["collections"]]
    # stdio serves the collection it was started for; HTTP every collection of the data root.
    expected = ["default"] if exchange.transport == "stdio" else sorted(["default", EMPTY])
    assert sorted(collections) == expected


def test_offers_the_page_resource_template(exchange: Exchange) -> None:
    assert "chancery://{collection}/documents/{doc_id}/pages/{page}" in exchange.templates


# -- bad arguments are tool errors that say what is wrong -----------------------------------------


@pytest.mark.parametrize(
    ("call", "says"),
    [
        ("unknown_collection", "nowhere"),
        ("malformed_collection", "is not a collection name"),
        ("page_zero", "there is no page 0"),
        ("page_past_end", "has pages 1 to 3"),
        ("unknown_document", "no document 'nowhere.pdf'"),
        ("missing_question", "question"),
        ("blank_question", "the question is empty"),
        ("k_out_of_range", "greater than or equal to 1"),
        ("unknown_answerer", "answerer"),
        ("no_llm", "LLM"),
    ],
)
def test_bad_arguments_come_back_as_tool_errors(exchange: Exchange, call: str, says: str) -> None:
    result = exchange.calls[call]
    assert result.is_error
    assert says in _text(result)
    assert result.structured_content is None


def test_an_empty_collection_is_served_over_http_only(exchange: Exchange) -> None:
    result = exchange.calls["empty_collection"]
    assert result.is_error
    if exchange.transport == "http":
        assert f"the collection '{EMPTY}' has no documents yet" in _text(result)
    else:
        assert f"chancery mcp --collection {EMPTY}" in _text(result)


# -- the HTTP mount -------------------------------------------------------------------------------


def test_the_mount_is_not_in_the_openapi_description(http_url: str) -> None:
    spec = httpx.get(f"{http_url}/openapi.json", timeout=30).json()
    assert not any(path.startswith("/mcp") for path in spec["paths"])


def test_the_mount_refuses_other_host_names(http_url: str) -> None:
    # A page on another site that rebinds its name to this address sends its own Host: the
    # app's trusted-host check refuses it (400) before the SDK's own guard (421) would.
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"host": "attacker.example", "accept": "application/json, text/event-stream"}
    response = httpx.post(f"{http_url}/mcp", json=body, headers=headers, timeout=30)
    assert response.status_code == 400
    other_origin = {**headers, "host": "127.0.0.1", "origin": "http://attacker.example"}
    response = httpx.post(f"{http_url}/mcp", json=body, headers=other_origin, timeout=30)
    assert response.status_code == 403


# -- the audit log --------------------------------------------------------------------------------


def _audited(data_dir: Path) -> dict[str, list[AuditRecord]]:
    """The records of MCP calls, by route."""
    found: dict[str, list[AuditRecord]] = {}
    for record in read_audit(data_dir / AUDIT_DIR, limit=10_000):
        if record.route.startswith("/mcp "):
            found.setdefault(record.route, []).append(record)
    return found


# `chancery mcp` serves its local user alone and keeps no audit log: HTTP only.
@pytest.mark.parametrize("exchange", ["http"], indirect=True)
def test_each_call_over_http_is_in_the_audit_log(
    exchange: Exchange, data_env: dict[str, str]
) -> None:
    found = _audited(Path(data_env["CHANCERY_DATA_DIR"]))
    answer = _ok(exchange, "ask")
    (ask,) = [r for r in found["/mcp tool:ask"] if r.status == 200]
    assert (ask.method, ask.key, ask.client) == ("POST", None, "127.0.0.1")
    assert ask.request_id and ask.collection == "default" and ask.question == QUESTION
    assert ask.answer == answer["answer"] and ask.abstained is False
    assert ask.answerer == "extractive" and ask.index_version == answer["index_version"]
    assert [(c.doc, c.page, c.quote) for c in ask.citations] == [
        (c["doc"], c["page"], c["quote"]) for c in answer["citations"]
    ]
    assert ask.latency_ms is not None and ask.latency_ms > 0
    # A search cites the pages it returned; a failed call keeps the status of its error.
    searches = found["/mcp tool:search"]
    filtered = next(r for r in searches if r.status == 200 and r.question == "gas storage")
    assert {c.doc for c in filtered.citations} == {ENERGY_DOC}
    assert {r.status for r in searches if r.collection == "nowhere"} == {404}
    pages = found["/mcp tool:get_page"]
    assert any(r.status == 404 for r in pages)
    assert [(c.doc, c.page) for c in pages[0].citations] == [(ENERGY_DOC, 2)]
    assert {"/mcp tool:list_documents", "/mcp tool:list_collections"} <= set(found)
    assert [r.status for r in found["/mcp resource:page"]] == [200]


_request_ids = itertools.count()


async def _ask_with(url: str, key: str) -> CallToolResult:
    async def name_the_request(request: httpx2.Request) -> None:
        # Each HTTP request gets an id that says which MCP message it carries.
        method = (
            json.loads(request.content or b"{}").get("method", "stream")
            if request.method == "POST"
            else "stream"
        )
        request.headers["x-request-id"] = f"{method.replace('/', '.')}-{next(_request_ids)}"

    async with (
        httpx2.AsyncClient(
            headers={"authorization": f"Bearer {key}"},
            timeout=CALL_SECONDS,
            event_hooks={"request": [name_the_request]},
        ) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http), mode="auto") as client,
    ):
        return await client.call_tool(
            "ask", {"question": "How many border crossings does Astoria have with Northland?"}
        )


def test_a_call_made_with_a_key_is_recorded_with_its_name_and_request_id(tmp_path: Path) -> None:
    registry: CollectionRegistry[None] = CollectionRegistry(tmp_path, lambda _: None)
    build_index(registry.ensure_default().index_dir, FILES, FakeEmbedder()).close()
    store = KeyStore(tmp_path)
    secret = store.create("assistant", "*", Scope.READ)[1]
    store.close()
    settings = Settings(data_dir=tmp_path, abstain_min_similarity=0.4, rate_limit_rps=None)
    app = build_app(settings, embedder=FakeEmbedder(), data_root=True)
    with Served(app) as url:
        result = anyio.run(_ask_with, url, secret)
    assert not result.is_error, _text(result)
    (record,) = _audited(tmp_path)["/mcp tool:ask"]
    assert (record.key, record.status, record.collection) == ("assistant", 200, "default")
    # The id of the request that carried the call, not of the one that opened the session.
    assert record.request_id is not None and record.request_id.startswith("tools.call-")
    assert record.answer == (result.structured_content or {})["answer"]
