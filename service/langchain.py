"""`ChanceryRetriever`: Chancery's search as a LangChain retriever, for pipelines of its own.

In process, it searches an index folder, or a collection of the data root, as `chancery search`
does (`index`, `collection`, or neither: CHANCERY_INDEX_DIR, else the collection `default`),
loading the model on the first query; remote, it asks a running service (`url`, and
`collection` to pick one of its collections). Either way a query gets `Document`s whose
`page_content` is the passage and whose metadata say where it stands: `doc_id`, `doc` (the
file name), `title`, `page_start`, `page_end` (1-based, as a PDF viewer shows), `page_label`
(the printed label of page_start, or None), `heading`, `chunk_id`, `score`, `collection` and
`index_version`; the document's `id` is the chunk id.

    retriever = ChanceryRetriever(url="http://127.0.0.1:8000", k=4)
    chain = retriever | format_passages | prompt | chat_model | StrOutputParser()

The asynchronous path (`ainvoke`) asks a remote service with an async client, and runs an
in-process search on a worker thread (embedding and FAISS hold the CPU).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import httpx
from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field, PrivateAttr, ValidationError, model_validator

from index.modes import Mode
from service.engine import Engine
from service.errors import (
    ChanceryError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    UnavailableError,
    translate,
)
from service.passages import PassageOut, PassagesFound, search_passages
from service.schemas import SearchRequest
from service.settings import Settings

_BY_STATUS: dict[int, type[ChanceryError]] = {
    400: InvalidRequestError,
    404: NotFoundError,
    409: ConflictError,
    422: InvalidRequestError,
    503: UnavailableError,
}


class _Catalog:
    """What a search response does not say about a hit's document (its id and title, the
    printed label of a page), read from the documents routes once per index version. A service
    whose hits carry these fields is asked for nothing more."""

    def __init__(self, base: str, index_version: str) -> None:
        self.index_version = index_version
        self._base = base
        self._ids: dict[str, tuple[str, str]] | None = None
        """File name -> (doc_id, title)."""
        self._labels: dict[str, dict[int, str | None]] = {}
        """doc_id -> page number -> printed label."""

    def wanted(self, hits: list[dict[str, Any]]) -> list[str]:
        """The paths to read before the hits can be completed; empty once they can."""
        if self._ids is None and any("doc_id" not in h or "title" not in h for h in hits):
            return [f"{self._base}/documents"]
        paths: list[str] = []
        for hit in hits:
            doc_id = self._doc_id(hit)
            if "page_label" in hit or doc_id is None or doc_id in self._labels:
                continue
            path = f"{self._base}/documents/{quote(doc_id, safe='')}"
            if path not in paths:
                paths.append(path)
        return paths

    def learn(self, payload: dict[str, Any]) -> None:
        """Take in what a documents route answered."""
        if "documents" in payload:
            self._ids = {d["file_name"]: (d["doc_id"], d["title"]) for d in payload["documents"]}
        else:
            pages = payload["page_list"]
            self._labels[payload["doc_id"]] = {p["number"]: p["label"] for p in pages}

    def passages(self, payload: dict[str, Any]) -> PassagesFound:
        passages = []
        for hit in payload["hits"]:
            doc_id = self._doc_id(hit)
            known = (self._ids or {}).get(hit["doc"])
            completed = {
                # A document removed between the search and the listing is not listed: its
                # file name stands in for what the listing would have said.
                "doc_id": doc_id or hit["doc"],
                "title": known[1] if known else hit["doc"],
                "page_label": self._labels.get(doc_id or "", {}).get(hit["page_start"]),
                **hit,
            }
            passages.append(PassageOut.model_validate(completed))
        return PassagesFound(
            passages=passages,
            collection=payload["collection"],
            index_version=payload["index_version"],
        )

    def _doc_id(self, hit: dict[str, Any]) -> str | None:
        if "doc_id" in hit:
            return str(hit["doc_id"])
        known = (self._ids or {}).get(hit["doc"])
        return known[0] if known else None


class RemoteError(ChanceryError):
    """The service answered with a status the retriever has no better name for."""


class ChanceryRetriever(BaseRetriever):
    """Passages from Chancery, with their documents and pages in the metadata."""

    url: str | None = Field(
        default=None, description="A running service (http://host:port); None: in process."
    )
    index: Path | None = Field(default=None, description="In process: this index folder.")
    collection: str | None = Field(
        default=None,
        description="The collection: of the service at `url`, or in process of the data root "
        "(CHANCERY_DATA_DIR). Default: the collection `default` (in process, CHANCERY_INDEX_DIR "
        "first when set).",
    )
    k: int = Field(default=4, ge=1, le=100, description="Passages per query.")
    mode: Mode = Field(default=Mode.HYBRID, description="hybrid, dense or bm25.")
    docs: list[str] | None = Field(default=None, description="Only these documents (ids or names).")
    timeout_s: float = Field(default=60, gt=0, description="Remote: wait this long for an answer.")
    settings: Settings | None = Field(
        default=None, description="In process: the settings (default: read from CHANCERY_*)."
    )

    _engine: Engine | None = PrivateAttr(default=None)
    _building: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _catalog: _Catalog | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.url is not None and self.index is not None:
            raise ValueError("give url (a running service) or index (a folder here), not both")
        if self.index is not None and self.collection is not None:
            raise ValueError(
                "give index (a bare index folder) or collection (a collection of the data root), "
                "not both"
            )
        return self

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        if self.url is None:
            return _documents(self._search_here(query))
        with httpx.Client(base_url=self.url, timeout=self.timeout_s) as client:
            return _documents(self._remote(query, _sync_fetcher(client)))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        if self.url is None:
            return _documents(await asyncio.to_thread(self._search_here, query))
        async with httpx.AsyncClient(base_url=self.url, timeout=self.timeout_s) as client:
            return _documents(await self._aremote(query, _async_fetcher(client)))

    # -- in process ------------------------------------------------------------------------------

    def _search_here(self, query: str) -> PassagesFound:
        request = self._request(query)
        with _as_chancery_errors():
            engine = self._local_engine()
            return search_passages(engine, request.question, request.k, request.mode, request.docs)

    def _local_engine(self) -> Engine:
        # Built once, on the first query: loading the model takes seconds, and a chain is often
        # assembled long before it runs, or never runs.
        with self._building:
            if self._engine is None:
                self._engine = self._build_engine()
            return self._engine

    def _build_engine(self) -> Engine:
        from service.build import build_answerers, build_embedder, collection_index, index_folder
        from service.collections import DEFAULT_COLLECTION

        settings = self.settings or Settings()
        if self.index is not None:
            root = self.index
        elif self.collection is not None:
            root = collection_index(settings, self.collection)
        else:
            root = index_folder(settings)
        settings = settings.model_copy(update={"index_dir": root})
        name = self.collection or DEFAULT_COLLECTION
        return Engine(root, build_embedder(settings), build_answerers(settings), collection=name)

    def _request(self, query: str) -> SearchRequest:
        """The request the HTTP API would take, so that both paths refuse the same input."""
        try:
            return SearchRequest(question=query, k=self.k, mode=self.mode, docs=self.docs)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            raise InvalidRequestError(f"{where}: {message}") from exc

    # -- remote ----------------------------------------------------------------------------------

    def _base(self) -> str:
        return f"/v1/collections/{quote(self.collection, safe='')}" if self.collection else "/v1"

    def _remote(self, query: str, fetch: _Fetch) -> PassagesFound:
        request = self._request(query)
        payload = fetch("POST", f"{self._base()}/search", request.model_dump(exclude_none=True))
        catalog = self._catalog_for(payload)
        while paths := catalog.wanted(payload["hits"]):
            for path in paths:
                catalog.learn(fetch("GET", path, None))
        return catalog.passages(payload)

    async def _aremote(self, query: str, fetch: _AsyncFetch) -> PassagesFound:
        request = self._request(query)
        body = request.model_dump(exclude_none=True)
        payload = await fetch("POST", f"{self._base()}/search", body)
        catalog = self._catalog_for(payload)
        while paths := catalog.wanted(payload["hits"]):
            for path in paths:
                catalog.learn(await fetch("GET", path, None))
        return catalog.passages(payload)

    def _catalog_for(self, payload: dict[str, Any]) -> _Catalog:
        catalog = self._catalog
        if catalog is None or catalog.index_version != payload["index_version"]:
            catalog = _Catalog(self._base(), payload["index_version"])
            self._catalog = catalog
        return catalog


_Fetch = Callable[[str, str, dict[str, Any] | None], dict[str, Any]]
_AsyncFetch = Callable[[str, str, dict[str, Any] | None], Awaitable[dict[str, Any]]]


def _sync_fetcher(client: httpx.Client) -> _Fetch:
    def fetch(method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            response = client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise _unreachable(client.base_url, exc) from exc
        return _payload(response)

    return fetch


def _async_fetcher(client: httpx.AsyncClient) -> _AsyncFetch:
    async def fetch(method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            response = await client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise _unreachable(client.base_url, exc) from exc
        return _payload(response)

    return fetch


def _payload(response: httpx.Response) -> dict[str, Any]:
    if response.is_success:
        payload: dict[str, Any] = response.json()
        return payload
    try:
        detail = str(response.json()["detail"])
    except (ValueError, KeyError, TypeError):
        detail = response.text[:500] or response.reason_phrase
    error = _BY_STATUS.get(response.status_code, RemoteError)
    raise error(f"{response.request.url} answered {response.status_code}: {detail}")


def _unreachable(base_url: httpx.URL, exc: httpx.HTTPError) -> UnavailableError:
    return UnavailableError(f"the Chancery service at {base_url} did not answer: {exc}")


@contextmanager
def _as_chancery_errors() -> Iterator[None]:
    """A lower layer's errors (a missing index, a model that built another index) as the
    ChanceryError that says what to do; Chancery's own and anything else as they are."""
    try:
        yield
    except ChanceryError:
        raise
    except Exception as exc:
        translated = translate(exc)
        if translated is None:
            raise
        raise translated from exc


def _documents(found: PassagesFound) -> list[Document]:
    return [
        Document(
            id=p.chunk_id,
            page_content=p.text,
            metadata={
                **p.model_dump(exclude={"text"}),
                "collection": found.collection,
                "index_version": found.index_version,
            },
        )
        for p in found.passages
    ]
