"""Where an evaluation sends its questions: a running service (HTTP), or the same app in-process.

Both speak the public HTTP API, so a run measures exactly what users and chat tools get. eval
never imports the service: the in-process app comes from the caller (`chancery eval run`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

import httpx

if TYPE_CHECKING:
    from starlette.types import ASGIApp

_TIMEOUT = 120.0


class TargetError(Exception):
    """The service did not answer as the API promises."""


class Target:
    def __init__(self, client: httpx.Client, name: str) -> None:
        self._client = client
        self.name = name
        self._doc_ids: dict[str, str] | None = None
        self._pages: dict[tuple[str, int], str | None] = {}

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._client.post(path, json=body)
        if response.status_code != 200:
            raise TargetError(f"POST {path} answered {response.status_code}: {response.text[:200]}")
        payload: dict[str, Any] = response.json()
        return payload

    def _get(self, path: str) -> dict[str, Any] | None:
        response = self._client.get(path)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise TargetError(f"GET {path} answered {response.status_code}: {response.text[:200]}")
        payload: dict[str, Any] = response.json()
        return payload

    def ask(self, question: str, k: int, answerer: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"question": question, "k": k}
        if answerer is not None:
            body["answerer"] = answerer
        return self._post("/v1/ask", body)

    def search(self, question: str, k: int, mode: str) -> dict[str, Any]:
        return self._post("/v1/search", {"question": question, "k": k, "mode": mode})

    def index_info(self) -> dict[str, Any]:
        return self._get("/v1/index") or {}

    def page_text(self, doc: str, page: int) -> str | None:
        """The stored text of a page, by file name: what a citation must quote from."""
        if self._doc_ids is None:
            listing = self._get("/v1/documents") or {"documents": []}
            self._doc_ids = {d["file_name"]: d["doc_id"] for d in listing["documents"]}
        doc_id = self._doc_ids.get(doc)
        if doc_id is None:
            return None
        key = (doc_id, page)
        if key not in self._pages:
            found = self._get(f"/v1/documents/{quote(doc_id, safe='')}/pages/{page}")
            self._pages[key] = None if found is None else str(found["text"])
        return self._pages[key]


@contextmanager
def http_target(url: str, api_key: str | None = None) -> Iterator[Target]:
    """A running service; `api_key` is sent as the bearer key, which a server with keys needs."""
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(base_url=url, timeout=_TIMEOUT, headers=headers) as client:
        yield Target(client, url)


@contextmanager
def in_process_target(app: ASGIApp) -> Iterator[Target]:
    """The service's app, handed over by whoever built it, driven inside this process by
    starlette's test client (which also runs the app's startup and shutdown)."""
    from fastapi.testclient import TestClient

    # A loopback name: the server answers only the host names it trusts, loopback by default.
    with TestClient(app, base_url="http://127.0.0.1") as client:
        # TestClient is an httpx.Client whose transport calls the app directly.
        yield Target(cast(httpx.Client, client), "in-process")
