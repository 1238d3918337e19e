"""The real service over HTTP: `chancery serve` in its own process, driven with httpx.

One server on the reference corpus serves most tests; the empty-index and live re-ingest tests
start their own, since they need an index folder of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from service import subprocess_server
from tests.conftest import REPO

REFERENCE = "kcss-serbia-security-doctrine.pdf"
NEWS = "kcss-report-news.txt"
STARTUP_SECONDS = 180
"""Generous: on a busy two-core machine the model alone can take a minute to load."""
REQUEST_SECONDS = 120

PAGE_QUESTIONS = [
    ("When was the Kosovar Centre for Security Studies established?", 30),
    ("Who is Serbia's primary supplier of natural gas?", 13),
    ("Which recommendations does the report make to Kosovo?", 27),
    ("Why does Serbia keep an observer status in the CSTO?", 12),
    ("What did Boris Tadic say about the four pillars of Serbian foreign policy?", 19),
    ("What share of Kosovo citizens would vote for NATO membership in a referendum?", 21),
    ("Where did Ramadan Ilazi get his PhD?", 4),
    ("What is Total Defense in Serbia's security doctrine?", 8),
    ("How does the Serbian strategy view Chinese financing without democratic conditions?", 14),
    ("Which country is Serbia's largest trading partner?", 19),
]
"""Questions whose answer sits on one page of the reference PDF. The answerer abstains on
front-matter questions (the ISBN, p. 30; the reviewers, p. 2; the designer, p. 2; the author,
p. 4): those pages are lists of labels, not sentences, so they are not asked here."""

UNANSWERABLE = "What does Serbia's strategy say about Hungary's energy ties with Russia?"
EXTRA_NOTE = (
    "Port Veltmark harbour note\n\n"
    "The harbour of Port Veltmark was opened in March 1987 by the Veltmark Harbour Authority. "
    "Its breakwater is four kilometres long and shelters the ferry berths from winter storms.\n"
)
HIT_FIELDS = {
    "chunk_id",
    "doc_id",
    "doc",
    "title",
    "page_start",
    "page_end",
    "page_label",
    "heading",
    "text",
    "score",
}
CITATION_FIELDS = {
    "n",
    "doc_id",
    "doc",
    "title",
    "page",
    "page_label",
    "quote",
    "quote_start",
    "quote_end",
    "chunk_id",
    "score",
    "answer_start",
    "answer_end",
}


# -- running the server --------------------------------------------------------------------------


def chancery(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env=subprocess_server.child_environment(),
    )


@contextlib.contextmanager
def running_server(index: Path, log: Path, ready: str = "/readyz") -> Iterator[str]:
    """`chancery serve` on `index`; a server that dies or never gets ready fails the test."""
    try:
        with subprocess_server.running_server(
            index, log, ready=ready, startup_seconds=STARTUP_SECONDS, cwd=REPO
        ) as base_url:
            yield base_url
    except subprocess_server.ServerStartError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def corpus_index(corpus_files: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("http-index")
    result = chancery("ingest", *map(str, corpus_files), "--index", str(root))
    assert result.returncode == 0, result.stderr
    return root


@pytest.fixture(scope="module")
def client(corpus_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    log = tmp_path_factory.mktemp("http-log") / "server.log"
    with (
        running_server(corpus_index, log) as base_url,
        httpx.Client(base_url=base_url, timeout=REQUEST_SECONDS) as http,
    ):
        yield http


def ask(client: httpx.Client, question: str, **extra: Any) -> dict[str, Any]:
    response = client.post("/v1/ask", json={"question": question, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ask_streamed(
    client: httpx.Client, question: str, path: str = "/v1/ask"
) -> list[tuple[str, dict[str, Any]]]:
    """The server-sent events of a streamed answer, in the order they came."""
    response = client.post(path, json={"question": question, "stream": True})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in response.text.split("\n\n"):
        if block:
            fields = dict(line.split(": ", 1) for line in block.split("\n"))
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def copy_index(source: Path, target: Path) -> None:
    """A copy of an index folder; its `current` link is relative, so it points into the copy."""
    shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns(".lock"))


# -- answers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("question", "page"), PAGE_QUESTIONS)
def test_answer_cites_the_page_that_holds_it(
    client: httpx.Client, question: str, page: int
) -> None:
    body = ask(client, question)
    assert body["abstained"] is False, body["answer"]
    assert body["citations"], body
    assert all(set(c) == CITATION_FIELDS for c in body["citations"])
    cited = [(c["doc"], c["page"]) for c in body["citations"]]
    assert (REFERENCE, page) in cited, (cited, body["answer"])


@pytest.mark.parametrize("path", ["/v1/ask", "/v1/collections/default/ask"])
def test_a_streamed_answer_sends_passages_then_its_cited_sentences_then_done(
    client: httpx.Client, path: str
) -> None:
    question = PAGE_QUESTIONS[0][0]
    whole = ask(client, question)
    events = ask_streamed(client, question, path)
    names = [name for name, _ in events]
    sentences = [data for name, data in events if name == "sentence"]
    assert not whole["abstained"] and sentences
    assert names == ["passages", *["sentence"] * len(sentences), "done"]
    assert events[0][1] == {"passages": whole["passages"]}
    assert [c for s in sentences for c in s["citations"]] == whole["citations"]
    for sentence in sentences:
        for citation in sentence["citations"]:
            start, end = citation["answer_start"], citation["answer_end"]
            assert whole["answer"][start:end] == sentence["text"]
    done = events[-1][1]
    assert (done["collection"], done["index_version"]) == ("default", whole["index_version"])
    assert set(done["timings_ms"]) == set(whole["timings_ms"])


def test_a_streamed_abstention_sends_passages_then_abstained_then_done(
    client: httpx.Client,
) -> None:
    whole = ask(client, UNANSWERABLE)
    events = ask_streamed(client, UNANSWERABLE)
    assert whole["abstained"]
    assert [name for name, _ in events] == ["passages", "abstained", "done"]
    assert events[1][1] == {"answer": whole["answer"], "passages": whole["passages"]}


def test_unanswerable_question_abstains_with_passages_and_no_citations(
    client: httpx.Client,
) -> None:
    body = ask(client, UNANSWERABLE)
    assert body["abstained"] is True
    assert body["citations"] == []
    assert body["passages"] and all(set(p) == HIT_FIELDS for p in body["passages"])
    assert "[1]" not in body["answer"]


def test_every_quote_is_on_its_page_and_every_marker_in_the_answer(
    client: httpx.Client,
) -> None:
    ids = {d["file_name"]: d["doc_id"] for d in client.get("/v1/documents").json()["documents"]}
    checked = 0
    for question, _ in PAGE_QUESTIONS[:6]:
        body = ask(client, question)
        for citation in body["citations"]:
            assert f"[{citation['n']}]" in body["answer"], body["answer"]
            assert citation["doc_id"] == ids[citation["doc"]]
            response = client.get(f"/v1/documents/{citation['doc_id']}/pages/{citation['page']}")
            assert response.status_code == 200, response.text
            page = response.json()
            assert page["number"] == citation["page"] and page["doc"] == citation["doc"]
            start, end = citation["quote_start"], citation["quote_end"]
            assert page["text"][start:end] == citation["quote"], (citation, page["text"])
            start, end = citation["answer_start"], citation["answer_end"]
            assert body["answer"][start:end] == citation["quote"], (citation, body["answer"])
            checked += 1
        assert [c["n"] for c in body["citations"]] == list(range(1, len(body["citations"]) + 1))
    assert checked >= 6


def test_ask_reports_the_collection_index_version_and_timings(client: httpx.Client) -> None:
    body = ask(client, PAGE_QUESTIONS[0][0], k=3)
    assert body["collection"] == "default"
    assert body["index_version"] == client.get("/readyz").json()["index_version"]
    assert body["timings_ms"]["total_ms"] > 0
    assert len(body["passages"]) <= 3


# -- search and documents ------------------------------------------------------------------------


def test_search_returns_documented_hits_best_first(client: httpx.Client) -> None:
    for mode in ("hybrid", "dense", "bm25"):
        response = client.post(
            "/v1/search", json={"question": "Total Defense concept", "k": 7, "mode": mode}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["collection"] == "default" and body["index_version"].startswith("v-")
        hits = body["hits"]
        assert 0 < len(hits) <= 7
        assert all(set(hit) == HIT_FIELDS for hit in hits)
        assert all(hit["page_start"] <= hit["page_end"] for hit in hits)
        scores = [hit["score"] for hit in hits]
        assert scores == sorted(scores, reverse=True), (mode, scores)
    # Each hit names its document as the documents routes do, and its first page's label.
    documents = {d["doc_id"]: d for d in client.get("/v1/documents").json()["documents"]}
    labels: dict[str, dict[int, str | None]] = {}
    for hit in hits:
        document = documents[hit["doc_id"]]
        assert (hit["doc"], hit["title"]) == (document["file_name"], document["title"])
        if hit["doc_id"] not in labels:
            detail = client.get(f"/v1/documents/{hit['doc_id']}").json()
            labels[hit["doc_id"]] = {page["number"]: page["label"] for page in detail["page_list"]}
        assert hit["page_label"] == labels[hit["doc_id"]][hit["page_start"]]


def test_search_document_filter(client: httpx.Client) -> None:
    for name in (NEWS, REFERENCE):
        response = client.post("/v1/search", json={"question": "NATO and Russia", "docs": [name]})
        assert response.status_code == 200, response.text
        assert {hit["doc"] for hit in response.json()["hits"]} == {name}
    unknown = client.post("/v1/search", json={"question": "NATO", "docs": ["nope.pdf"]})
    assert unknown.status_code == 404
    assert "no document 'nope.pdf'" in unknown.json()["detail"]


def test_documents_and_pages(client: httpx.Client) -> None:
    listing = client.get("/v1/documents").json()
    by_id = {d["doc_id"]: d for d in listing["documents"]}
    assert set(by_id) == {REFERENCE, NEWS}
    assert by_id[REFERENCE]["pages"] == 30
    detail = client.get(f"/v1/documents/{REFERENCE}").json()
    assert [p["number"] for p in detail["page_list"]] == list(range(1, 31))
    page = client.get(f"/v1/documents/{REFERENCE}/pages/30").json()
    assert page["doc_id"] == REFERENCE and "Established in April 2008" in page["text"]


def test_a_bare_index_folder_is_the_collection_default_read_only(client: httpx.Client) -> None:
    version = client.get("/readyz").json()["index_version"]
    listed = client.get("/v1/collections").json()["collections"]
    assert listed == [{"name": "default", "index_version": version, "documents": 2}]
    question = {"question": "Total Defense concept", "k": 3}
    named = client.post("/v1/collections/default/search", json=question)
    assert named.status_code == 200, named.text
    assert named.json() == client.post("/v1/search", json=question).json()
    page = client.get(f"/v1/collections/default/documents/{REFERENCE}/pages/30")
    assert page.json() == client.get(f"/v1/documents/{REFERENCE}/pages/30").json()
    # Only `chancery ingest --index` writes a bare folder: no collections, uploads or jobs.
    for response in (
        client.post("/v1/collections", json={"name": "more"}),
        client.post("/v1/collections/default/documents", files=[("files", ("a.md", b"# A"))]),
        client.delete(f"/v1/collections/default/documents/{NEWS}"),
        client.delete("/v1/collections/default"),
    ):
        assert response.status_code == 409, response.text
        assert "chancery serve --index" in response.json()["detail"]
    assert client.get("/v1/collections/other/documents").status_code == 404
    assert client.post("/v1/collections", json={"name": "../x"}).status_code == 422
    assert client.get("/v1/jobs/" + "A" * 22).status_code == 404


# -- bad requests --------------------------------------------------------------------------------

_JSON = {"content-type": "application/json"}


def _raw(body: bytes) -> dict[str, Any]:
    return {"content": body, "headers": _JSON}


BAD_REQUESTS = [
    ("empty question", "post", "/v1/ask", {"json": {"question": ""}}, 422),
    ("whitespace question", "post", "/v1/ask", {"json": {"question": " \n\t "}}, 422),
    ("2001 characters", "post", "/v1/ask", {"json": {"question": "a" * 2001}}, 422),
    ("k = 0", "post", "/v1/ask", {"json": {"question": "NATO?", "k": 0}}, 422),
    ("k = 1000", "post", "/v1/ask", {"json": {"question": "NATO?", "k": 1000}}, 422),
    ("search k = 1000", "post", "/v1/search", {"json": {"question": "NATO", "k": 1000}}, 422),
    ("unknown mode", "post", "/v1/search", {"json": {"question": "NATO", "mode": "x"}}, 422),
    ("malformed JSON", "post", "/v1/ask", {"content": b'{"question": ', "headers": _JSON}, 422),
    ("no body", "post", "/v1/ask", {"headers": _JSON}, 422),
    ("question not a string", "post", "/v1/ask", {"json": {"question": 5}}, 422),
    ("body not an object", "post", "/v1/search", {"json": ["NATO"]}, 422),
    ("unknown doc filter", "post", "/v1/ask", {"json": {"question": "x", "docs": ["a.pdf"]}}, 404),
    ("unknown page", "get", f"/v1/documents/{REFERENCE}/pages/31", {}, 404),
    ("page 0", "get", f"/v1/documents/{REFERENCE}/pages/0", {}, 404),
    ("page not a number", "get", f"/v1/documents/{REFERENCE}/pages/x", {}, 422),
    ("unknown document", "get", "/v1/documents/nope.pdf", {}, 404),
    ("unknown document's page", "get", "/v1/documents/nope.pdf/pages/1", {}, 404),
    ("page beyond SQLite's integers", "get", f"/v1/documents/{REFERENCE}/pages/{10**20}", {}, 404),
    ("empty document filter", "post", "/v1/ask", {"json": {"question": "NATO", "docs": []}}, 422),
    ("lone surrogate", "post", "/v1/ask", _raw(b'{"question": "NATO \\ud800 Serbia"}'), 422),
    ("surrogate in docs", "post", "/v1/ask", _raw(b'{"question": "x", "docs": ["\\ud800"]}'), 422),
    ("invalid UTF-8", "post", "/v1/ask", _raw(b'{"question": "NATO \xff"}'), 422),
    ("deep nesting", "post", "/v1/ask", _raw(b"[" * 30000 + b"]" * 30000), 422),
    ("k = true", "post", "/v1/ask", {"json": {"question": "NATO?", "k": True}}, 422),
    ("k as a string", "post", "/v1/search", {"json": {"question": "NATO", "k": "5"}}, 422),
    ("misspelt field", "post", "/v1/ask", {"json": {"quesiton": "NATO?"}}, 422),
    ("body over the limit", "post", "/v1/ask", _raw(b" " * 70000), 413),
    ("wrong method", "get", "/v1/ask", {}, 405),
]


@pytest.mark.parametrize(("case", "method", "path", "arguments", "status"), BAD_REQUESTS)
def test_bad_request_is_a_4xx_with_a_detail(
    client: httpx.Client,
    case: str,
    method: str,
    path: str,
    arguments: dict[str, Any],
    status: int,
) -> None:
    response = client.request(method.upper(), path, **arguments)
    assert response.status_code == status, (case, response.status_code, response.text)
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail.strip()
    assert "Traceback" not in response.text and 'File "' not in response.text


def test_limits_are_inclusive(client: httpx.Client) -> None:
    assert client.post("/v1/ask", json={"question": "a" * 2000}).status_code == 200
    assert client.post("/v1/ask", json={"question": "NATO?", "k": 50}).status_code == 200
    assert client.post("/v1/search", json={"question": "NATO", "k": 100}).status_code == 200


# -- no index ------------------------------------------------------------------------------------


def test_server_without_an_index_is_alive_but_unavailable(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    with (
        running_server(root, tmp_path / "server.log", ready="/healthz") as base_url,
        httpx.Client(base_url=base_url, timeout=REQUEST_SECONDS) as http,
    ):
        assert http.get("/healthz").status_code == 200
        for response in (
            http.post("/v1/ask", json={"question": "Who reviewed the report?"}),
            http.post("/v1/search", json={"question": "NATO"}),
            http.get("/v1/documents"),
            http.get("/readyz"),
        ):
            assert response.status_code == 503, response.text
            detail = response.json()["detail"]
            assert "chancery ingest" in detail and "no documents yet" in detail
            assert str(tmp_path) not in detail  # no server paths for HTTP clients


# -- load ----------------------------------------------------------------------------------------


def test_fifty_concurrent_asks_all_answer_the_same_as_alone(client: httpx.Client) -> None:
    questions = [question for question, _ in PAGE_QUESTIONS[:5]]
    alone = {question: ask(client, question) for question in questions}

    async def together() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(
            base_url=str(client.base_url), timeout=REQUEST_SECONDS, limits=limits
        ) as http:
            return await asyncio.gather(
                *(http.post("/v1/ask", json={"question": questions[i % 5]}) for i in range(50))
            )

    responses = asyncio.run(together())
    assert [r.status_code for r in responses] == [200] * 50, [r.text for r in responses]
    for i, response in enumerate(responses):
        body, expected = response.json(), alone[questions[i % 5]]
        assert body["answer"] == expected["answer"]
        assert body["citations"] == expected["citations"]


@dataclass
class _Traffic:
    """Requests sent in a background thread until stopped: what each returned, and when."""

    base_url: str
    limit: int = 200
    results: list[tuple[float, int, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        requests = [
            ("POST", "/v1/ask", {"question": PAGE_QUESTIONS[0][0]}),
            ("POST", "/v1/search", {"question": "Total Defense", "k": 5}),
            ("GET", "/v1/documents", None),
        ]
        with httpx.Client(base_url=self.base_url, timeout=REQUEST_SECONDS) as http:
            while not self.stop.is_set() and len(self.results) < self.limit:
                method, path, body = requests[len(self.results) % len(requests)]
                started = time.monotonic()
                try:
                    response = http.request(method, path, json=body)
                    self.results.append((started, response.status_code, response.text[:300]))
                except httpx.HTTPError as exc:
                    self.results.append((started, 0, repr(exc)))


def test_reingest_while_serving_loses_no_request(
    corpus_index: Path, corpus_files: list[Path], tmp_path: Path
) -> None:
    root = tmp_path / "index"
    copy_index(corpus_index, root)
    note = tmp_path / "veltmark-harbour.txt"
    note.write_text(EXTRA_NOTE, encoding="utf-8")
    with (
        running_server(root, tmp_path / "server.log") as base_url,
        httpx.Client(base_url=base_url, timeout=REQUEST_SECONDS) as http,
    ):
        before = http.get("/v1/documents").json()["index_version"]
        traffic = _Traffic(base_url)
        worker = threading.Thread(target=traffic.run)
        worker.start()
        try:
            started = time.monotonic()
            result = chancery("ingest", *map(str, corpus_files), str(note), "--index", str(root))
            finished = time.monotonic()
            while len(traffic.results) < traffic.limit and not any(
                at > finished for at, _, _ in traffic.results
            ):
                time.sleep(0.1)
        finally:
            traffic.stop.set()
            worker.join(timeout=REQUEST_SECONDS)
        assert result.returncode == 0, result.stderr
        assert "1 added" in result.stdout and "2 unchanged" in result.stdout
        failed = [(status, text) for _, status, text in traffic.results if status != 200]
        assert not failed, failed
        assert any(started <= at <= finished for at, _, _ in traffic.results), "none during ingest"

        # The first request after the switch starts loading the new version in the background
        # and is answered from the old one; later ones get the new version once it is loaded.
        listing = http.get("/v1/documents").json()
        deadline = time.monotonic() + REQUEST_SECONDS
        while listing["index_version"] == before and time.monotonic() < deadline:
            time.sleep(0.05)
            listing = http.get("/v1/documents").json()
        assert "veltmark-harbour.txt" in {d["doc_id"] for d in listing["documents"]}
        assert listing["index_version"] != before
        body = ask(http, "When was the harbour of Port Veltmark opened?")
        assert body["index_version"] == listing["index_version"]
        assert "veltmark-harbour.txt" in {c["doc"] for c in body["citations"]}, body
