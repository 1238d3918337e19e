"""Collections, uploads and jobs against the real server: `chancery serve` over a data root, under
uvicorn, driven with httpx.

One server serves most tests, each in a collection of its own; the crash test starts and kills
its own. Jobs are polled with a generous deadline, which only a failing test reaches.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import docx
import httpx
import pytest

from ingest.ids import make_doc_id
from service import subprocess_server
from service.collections import NAME_PATTERN
from tests.conftest import REPO, SAMPLES

PDF = SAMPLES / "northland-national-security-strategy.pdf"
QUESTION = "Who is responsible for coordinating the implementation of the strategy?"
MAX_FILE_BYTES = 1024 * 1024
"""The server's per-file limit here (CHANCERY_MAX_FILE_BYTES): far below the default, so that a
file over it is cheap to send."""
STARTUP_SECONDS = 180
REQUEST_SECONDS = 120
JOB_SECONDS = 600
"""Generous: no test measures time; only a job that never ends reaches this."""
HARBOUR = (
    "The harbour of Port Veltmark was opened in March 1987 by the Veltmark Harbour Authority. "
    "Its breakwater is four kilometres long and shelters the ferry berths from winter storms."
)


# -- the server ----------------------------------------------------------------------------------


def _environment(data_root: Path, **extra: str) -> dict[str, str]:
    return {"CHANCERY_DATA_DIR": str(data_root), **extra}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("collections-http") / "data"


@pytest.fixture(scope="module")
def client(data_root: Path) -> Iterator[httpx.Client]:
    env = _environment(data_root, CHANCERY_MAX_FILE_BYTES=str(MAX_FILE_BYTES))
    log = data_root.parent / "server.log"
    try:
        # /readyz would wait for an index in `default`; /healthz answers once startup (the
        # model, the data root) is done.
        with (
            subprocess_server.running_server(
                None, log, ready="/healthz", startup_seconds=STARTUP_SECONDS, env=env, cwd=REPO
            ) as base_url,
            httpx.Client(base_url=base_url, timeout=REQUEST_SECONDS) as http,
        ):
            yield http
    except subprocess_server.ServerStartError as exc:
        pytest.fail(str(exc))


# -- helpers -------------------------------------------------------------------------------------


def create(client: httpx.Client, name: str) -> None:
    response = client.post("/v1/collections", json={"name": name})
    assert response.status_code == 201, response.text


def upload(client: httpx.Client, name: str, files: list[tuple[str, bytes]]) -> httpx.Response:
    parts = [("files", (file_name, data)) for file_name, data in files]
    return client.post(f"/v1/collections/{name}/documents", files=parts)


def accepted(response: httpx.Response) -> str:
    """The job URL of a 202, checked against its Location header."""
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["state"] == "queued"
    assert response.headers["location"] == body["url"] == f"/v1/jobs/{body['job_id']}"
    url: str = body["url"]
    return url


def finished(client: httpx.Client, url: str) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_SECONDS
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(url).json()
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"the job {url} did not finish within {JOB_SECONDS} s")


def ingested(client: httpx.Client, name: str, files: list[tuple[str, bytes]]) -> dict[str, Any]:
    job = finished(client, accepted(upload(client, name, files)))
    assert job["state"] == "succeeded", job
    return job


def collection(client: httpx.Client, name: str) -> dict[str, Any] | None:
    listed = client.get("/v1/collections").json()["collections"]
    return next((c for c in listed if c["name"] == name), None)


def docx_bytes(title: str, text: str) -> bytes:
    document = docx.Document()
    document.add_heading(title, level=1)
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("report.txt", "Not a PDF at all.")
    return buffer.getvalue()


def note(number: int) -> bytes:
    return (
        f"# Harbour note {number}\n\nThe pier number {number} of Port Veltmark holds "
        f"{number * 7} fishing boats and a lighthouse painted {('red', 'green')[number % 2]}.\n"
    ).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


# -- a collection's life -------------------------------------------------------------------------


def test_a_collection_lives_from_creation_to_deletion(
    client: httpx.Client, data_root: Path
) -> None:
    assert collection(client, "default") is not None  # created at startup
    response = client.post("/v1/collections", json={"name": "reports"})
    assert response.status_code == 201, response.text
    assert response.json() == {"name": "reports", "index_version": None, "documents": 0}
    again = client.post("/v1/collections", json={"name": "reports"})
    assert again.status_code == 409 and "already exists" in again.json()["detail"]

    brief = docx_bytes("Port Veltmark harbour note", HARBOUR)
    job = ingested(
        client,
        "reports",
        [(PDF.name, PDF.read_bytes()), ("harbour.docx", brief), ("scan.pdf", zip_bytes())],
    )
    results = {result["name"]: result for result in job["files"]}
    assert set(results) == {PDF.name, "harbour.docx", "scan.pdf"}
    pdf = results[PDF.name]
    assert (pdf["status"], pdf["reason"], pdf["pages"], pdf["doc_id"]) == ("ok", "", 10, PDF.name)
    assert pdf["chunks"] > 0
    assert results["harbour.docx"]["status"] == "ok"
    assert results["harbour.docx"]["doc_id"] == "harbour.docx"
    assert results["scan.pdf"] == {
        "name": "scan.pdf",
        "status": "failed",
        "reason": "it is not a PDF (it looks like a ZIP archive)",
        "pages": 0,
        "chunks": 0,
        "doc_id": None,
    }
    version = job["index_version"]
    assert version.startswith("v-") and job["error"] is None and job["removed"] == []
    assert job["collection"] == "reports"
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]
    assert collection(client, "reports") == {
        "name": "reports",
        "index_version": version,
        "documents": 2,
    }

    # The new documents answer in their collection, and only there.
    search = client.post(
        "/v1/collections/reports/search", json={"question": "Port Veltmark breakwater", "k": 3}
    ).json()
    assert search["collection"] == "reports" and search["index_version"] == version
    assert search["hits"][0]["doc"] == "harbour.docx"
    answer = client.post("/v1/collections/reports/ask", json={"question": QUESTION}).json()
    assert answer["collection"] == "reports" and not answer["abstained"], answer
    cited = answer["citations"][0]
    assert cited["doc_id"] == PDF.name
    page = client.get(f"/v1/collections/reports/documents/{PDF.name}/pages/{cited['page']}")
    assert page.status_code == 200, page.text
    assert page.json()["text"][cited["quote_start"] : cited["quote_end"]] == cited["quote"]
    listing = client.get("/v1/collections/reports/documents").json()
    assert {d["doc_id"] for d in listing["documents"]} == {PDF.name, "harbour.docx"}
    assert client.get("/v1/collections/reports/index").json()["version"] == version
    assert client.get(f"/v1/documents/{PDF.name}").status_code in (404, 503)  # not `default`

    # Originals are kept by content, beside the lock jobs share; the refused file is not.
    originals = data_root / "collections" / "reports" / "originals"
    assert tree(originals) == {
        ".in-use",
        sha256(PDF.read_bytes()),
        f"{sha256(PDF.read_bytes())}/{PDF.name}",
        sha256(brief),
        f"{sha256(brief)}/harbour.docx",
    }

    # Deleting a document is a job too.
    removal = finished(
        client, accepted(client.delete(f"/v1/collections/reports/documents/{PDF.name}"))
    )
    assert removal["state"] == "succeeded", removal
    assert removal["removed"] == [PDF.name] and removal["files"] == []
    assert removal["index_version"] not in (None, version)
    assert collection(client, "reports") == {
        "name": "reports",
        "index_version": removal["index_version"],
        "documents": 1,
    }
    gone = client.get(f"/v1/collections/reports/documents/{PDF.name}")
    deadline = time.monotonic() + REQUEST_SECONDS  # the engine switches in the background
    while gone.status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
        gone = client.get(f"/v1/collections/reports/documents/{PDF.name}")
    assert gone.status_code == 404, gone.text
    missing = client.delete(f"/v1/collections/reports/documents/{PDF.name}")
    assert missing.status_code == 404 and "no document" in missing.json()["detail"]

    # Deleting the collection removes it whole.
    assert client.delete("/v1/collections/reports").status_code == 204
    assert collection(client, "reports") is None
    assert not (data_root / "collections" / "reports").exists()
    assert client.post("/v1/collections/reports/ask", json={"question": "x"}).status_code == 404
    assert client.delete("/v1/collections/reports").status_code == 404
    protected = client.delete("/v1/collections/default")
    assert protected.status_code == 409 and "default" in protected.json()["detail"]
    job_now = client.get(f"/v1/jobs/{removal['job_id']}").json()
    assert job_now == removal  # job records outlive their collection


# -- limits --------------------------------------------------------------------------------------


def test_a_file_over_the_limit_refuses_the_whole_upload(
    client: httpx.Client, data_root: Path
) -> None:
    create(client, "limits")
    jobs = data_root / "jobs"
    before = tree(jobs)
    small = ("small.md", note(1))
    big = ("big.txt", b"a" * (MAX_FILE_BYTES + 1))
    response = upload(client, "limits", [small, big])
    assert response.status_code == 413, response.text
    assert response.json()["detail"] == "big.txt is larger than the limit of 1 MiB per file"
    twenty_one = upload(client, "limits", [(f"n{i}.md", note(i)) for i in range(21)])
    assert twenty_one.status_code == 413, twenty_one.text
    assert "at most 20 files" in twenty_one.json()["detail"]
    none = client.post(
        "/v1/collections/limits/documents",
        content=b"--b--\r\n",
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert none.status_code == 422 and "no files" in none.json()["detail"]
    not_a_form = client.post("/v1/collections/limits/documents", json={"files": ["a.pdf"]})
    assert not_a_form.status_code == 422 and "multipart" in not_a_form.json()["detail"]
    field_body = b'--b\r\nContent-Disposition: form-data; name="files"\r\n\r\ntext\r\n--b--\r\n'
    a_field = client.post(
        "/v1/collections/limits/documents",
        content=field_body,
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert a_field.status_code == 422 and "no file name" in a_field.json()["detail"]
    unknown = client.post("/v1/collections/nowhere/documents", files=[("files", small)])
    assert unknown.status_code == 404, unknown.text
    # Refused whole: nothing staged, no job recorded, the collection as it was.
    assert tree(data_root / "collections" / "limits" / "uploads") == set()
    assert tree(jobs) == before
    assert collection(client, "limits") == {"name": "limits", "index_version": None, "documents": 0}


def test_twenty_files_at_once(client: httpx.Client) -> None:
    create(client, "many")
    files = [(f"note-{i:02}.{('md', 'txt')[i % 2]}", note(i)) for i in range(20)]
    job = ingested(client, "many", files)
    assert [(f["name"], f["status"], f["doc_id"]) for f in job["files"]] == [
        (name, "ok", name) for name, _ in files
    ]
    assert collection(client, "many") == {
        "name": "many",
        "index_version": job["index_version"],
        "documents": 20,
    }
    hits = client.post(
        "/v1/collections/many/search",
        json={"question": "pier 13 lighthouse 91 fishing boats", "mode": "bm25", "k": 1},
    ).json()["hits"]
    assert hits[0]["doc"] == "note-13.txt"


# -- uploads while answering ---------------------------------------------------------------------


@dataclass
class _Asking:
    """Asks in a background thread until stopped: when each started and what it returned."""

    base_url: str
    path: str
    results: list[tuple[float, int, str, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=REQUEST_SECONDS) as http:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    response = http.post(self.path, json={"question": QUESTION, "k": 4})
                    version = response.json().get("index_version", "")
                    self.results.append((started, response.status_code, version, ""))
                except httpx.HTTPError as exc:
                    self.results.append((started, 0, "", repr(exc)))


def test_uploads_racing_with_asks_lose_no_request(client: httpx.Client) -> None:
    create(client, "race")
    first = ingested(client, "race", [(PDF.name, PDF.read_bytes())])["index_version"]
    asking = _Asking(str(client.base_url), "/v1/collections/race/ask")
    worker = threading.Thread(target=asking.run)
    worker.start()
    try:
        submitted = time.monotonic()
        files = [(f"note-{i}.md", note(i)) for i in range(6)]
        files.append(("harbour.docx", docx_bytes("Harbour", HARBOUR)))
        # Copies of the PDF under other names: a job of a few seconds, so asks overlap it.
        files += [(f"strategy-{i}.pdf", PDF.read_bytes()) for i in range(2)]
        job = ingested(client, "race", files)
        done = time.monotonic()
        # Until an ask is answered from the new version: the switch happens in the background.
        deadline = done + REQUEST_SECONDS
        while time.monotonic() < deadline and not any(
            version == job["index_version"] for _, _, version, _ in asking.results
        ):
            time.sleep(0.05)
    finally:
        asking.stop.set()
        worker.join(REQUEST_SECONDS)
    failed = [(status, error) for _, status, _, error in asking.results if status != 200]
    assert not failed, failed
    assert any(submitted <= at <= done for at, _, _, _ in asking.results), "none during the job"
    versions = [version for _, _, version, _ in asking.results]
    assert set(versions) == {first, job["index_version"]} and versions[-1] != first


# -- path tricks ---------------------------------------------------------------------------------


def _raw_status(base_url: str, method: str, target: str) -> int:
    """The status of a request sent exactly as written: httpx would resolve `..` itself."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), REQUEST_SECONDS) as sock:
        head = f"{method} {target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
        sock.sendall(head.encode())
        answer = sock.recv(65536)
    return int(answer.split(b" ", 2)[1])


NON_ASCII = quote("Стратегија")
BAD_NAMES = [
    # (as sent in the path, status): 422 where the name reaches the route, 404 where a decoded
    # slash makes the path match no route at all.
    ("%2e%2e", 422),
    ("%2E%2E%2Fescape", 404),
    ("..%2F..%2Fescape", 404),
    ("%2Fetc%2Fpasswd", 404),
    ("a%00b", 422),
    ("a" * 300, 422),
    (NON_ASCII, 422),
    ("Reports", 422),
    ("con", 422),
    ("-x", 422),
    ("x" * 64, 422),
    ("valid-but-unknown", 404),
]


@pytest.mark.parametrize(("name", "status"), BAD_NAMES)
def test_collection_names_are_never_paths(
    client: httpx.Client, data_root: Path, name: str, status: int
) -> None:
    outside = tree(data_root.parent)
    for method, path, kwargs in [
        ("GET", f"/v1/collections/{name}/documents", {}),
        ("POST", f"/v1/collections/{name}/ask", {"json": {"question": "What?"}}),
        ("POST", f"/v1/collections/{name}/documents", {"files": [("files", ("a.md", note(1)))]}),
        ("DELETE", f"/v1/collections/{name}/documents/a.md", {}),
        ("DELETE", f"/v1/collections/{name}", {}),
    ]:
        response = client.request(method, path, **kwargs)
        assert response.status_code == status, (method, path, response.text)
        assert response.json()["detail"]
    assert tree(data_root.parent) == outside


REFUSED_NAMES: list[object] = [
    *["..", "../x", "/etc/passwd", "a\x00b", "a" * 300, "стратегија", "Reports", "con", ""],
    *[" x", "x\n", "x/y", "x\\y", "\u202ex", 5, None],
]


@pytest.mark.parametrize("name", REFUSED_NAMES)
def test_a_collection_name_outside_the_pattern_is_refused(
    client: httpx.Client, data_root: Path, name: object
) -> None:
    outside = tree(data_root.parent)
    response = client.post("/v1/collections", json={"name": name})
    assert response.status_code == 422, response.text
    assert tree(data_root.parent) == outside


def test_dot_segments_sent_raw_reach_no_collection(client: httpx.Client, data_root: Path) -> None:
    outside = tree(data_root.parent)
    base_url = str(client.base_url)
    for target in [
        "/v1/collections/../jobs/documents",
        "/v1/collections/../../etc/ask",
        "/v1/collections/./documents",
        "/v1/collections/default/documents/../../../../etc/passwd",
        "/v1/jobs/../collections",
    ]:
        assert _raw_status(base_url, "GET", target) in (404, 405, 422), target
        assert _raw_status(base_url, "DELETE", target) in (404, 405, 422), target
    assert tree(data_root.parent) == outside
    # What a data root holds (the audit log and page cache beside the collections), nothing else.
    known = {"collections", "jobs", "trash", "audit", "cache", "keys.sqlite3"}
    assert {path.name for path in data_root.iterdir()} <= known
    assert all(re.fullmatch(NAME_PATTERN, p.name) for p in (data_root / "collections").iterdir())


def test_document_and_job_ids_are_never_paths(client: httpx.Client, data_root: Path) -> None:
    create(client, "ids")
    ingested(client, "ids", [("kept.md", note(3))])
    outside = tree(data_root.parent)
    for doc_id in [
        "%2e%2e",
        "..%2F..%2Fjobs",
        "a%00b",
        "%2Fetc%2Fpasswd",
        "x" * 5000,
        "kept.md%00",
    ]:
        for method, path in [
            ("DELETE", f"/v1/collections/ids/documents/{doc_id}"),
            ("GET", f"/v1/collections/ids/documents/{doc_id}"),
            ("GET", f"/v1/collections/ids/documents/{doc_id}/pages/1"),
        ]:
            response = client.request(method, path)
            assert response.status_code == 404, (method, path, response.text)
    for job_id in ["%2e%2e", "..%2F..%2Fcollections", "a%00b", "x" * 5000, "A" * 22]:
        assert client.get(f"/v1/jobs/{job_id}").status_code == 404, job_id
    assert tree(data_root.parent) == outside
    listed = collection(client, "ids")
    assert listed is not None and listed["documents"] == 1


def _multipart(files: list[tuple[bytes, bytes]]) -> tuple[bytes, dict[str, str]]:
    """A body with file names exactly as given, bytes and all: clients escape or refuse some."""
    boundary = b"chancery-test-boundary"
    body = b"".join(
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="files"; filename="' + name + b'"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
        for name, data in files
    )
    headers = {"content-type": f"multipart/form-data; boundary={boundary.decode()}"}
    return body + b"--" + boundary + b"--\r\n", headers


def test_uploaded_file_names_are_made_safe(client: httpx.Client, data_root: Path) -> None:
    create(client, "names")
    long_name = "n" * 300 + ".md"
    sent = {
        "../../etc/passwd.txt": "passwd.txt",
        "/abs/x.md": "x.md",
        "a\x00b.md": "ab.md",
        "..\\..\\windows.txt": "windows.txt",
        ".hidden.md": "hidden.md",
        "-rf.txt": "rf.txt",
        "Стратегија.md": "Стратегија.md",
        long_name: "n" * 197 + ".md",
    }
    files = [(raw.encode(), note(i)) for i, raw in enumerate(sent)]
    body, headers = _multipart(files)
    job = finished(
        client,
        accepted(client.post("/v1/collections/names/documents", content=body, headers=headers)),
    )
    assert job["state"] == "succeeded", job
    stored = {result["name"]: result for result in job["files"]}
    assert set(stored) == set(sent.values())
    for name, result in stored.items():
        assert result["status"] == "ok", result
        assert result["doc_id"] == make_doc_id(name)
    assert stored["Стратегија.md"]["doc_id"] == "стратегија~2c3830c190.md"
    originals = data_root / "collections" / "names" / "originals"
    kept = {(path.parent.name, path.name) for path in originals.glob("*/*")}
    assert kept == {(sha256(data), sent[raw.decode()]) for raw, data in files}
    everything = tree(data_root)
    assert not any(part in ("etc", "abs", "..") for path in everything for part in Path(path).parts)
    listed = client.get("/v1/collections/names/documents").json()["documents"]
    assert {d["file_name"] for d in listed} == set(sent.values())


# -- a crash during a job ------------------------------------------------------------------------


def test_kill_9_during_a_job_leaves_the_old_version_and_a_failed_job(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _environment(data)
    with (
        subprocess_server.server_process(
            None,
            tmp_path / "first.log",
            ready="/healthz",
            startup_seconds=STARTUP_SECONDS,
            env=env,
            cwd=REPO,
        ) as (base_url, process),
        httpx.Client(base_url=base_url, timeout=REQUEST_SECONDS) as http,
    ):
        create(http, "crash")
        old = ingested(http, "crash", [("before.md", note(1))])["index_version"]
        # Twenty PDFs take the job many seconds to parse and embed; the server is killed as soon
        # as the job is seen running, long before it could switch the index.
        batch = [(f"copy-{i:02}.pdf", PDF.read_bytes()) for i in range(20)]
        url = accepted(upload(http, "crash", batch))
        deadline = time.monotonic() + JOB_SECONDS
        state = "queued"
        while state == "queued" and time.monotonic() < deadline:
            state = http.get(url).json()["state"]
        assert state == "running"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(REQUEST_SECONDS)
    assert process.returncode == -signal.SIGKILL

    with (
        subprocess_server.running_server(
            None,
            tmp_path / "second.log",
            ready="/healthz",
            startup_seconds=STARTUP_SECONDS,
            env=env,
            cwd=REPO,
        ) as base_url,
        httpx.Client(base_url=base_url, timeout=REQUEST_SECONDS) as http,
    ):
        job = http.get(url).json()
        assert job["state"] == "failed", job
        assert job["error"] == (
            f"the server stopped while the job ran; the collection is unchanged (version {old}); "
            "upload the files again"
        )
        assert job["index_version"] is None and job["finished_at"] is not None
        assert collection(http, "crash") == {"name": "crash", "index_version": old, "documents": 1}
        search = http.post("/v1/collections/crash/search", json={"question": "pier lighthouse"})
        assert search.status_code == 200 and search.json()["index_version"] == old
        assert tree(data / "collections" / "crash" / "uploads") == set()
        # The collection takes new work: the killed writer's leftovers are no obstacle.
        after = ingested(http, "crash", [("after.md", note(2))])
        assert after["index_version"] != old
        assert collection(http, "crash") == {
            "name": "crash",
            "index_version": after["index_version"],
            "documents": 2,
        }
