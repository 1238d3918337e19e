"""The HTTP API: `create_app(settings)`. Routes stay thin; errors become statuses in one place."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated, Any

import faiss
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from index.embedder import Embedder
from index.store import StoreError, UnknownDocumentError
from service.engine import Engine, NoIndexError
from service.model import make_embedder
from service.schemas import (
    AskRequest,
    AskResponse,
    DocumentDetail,
    DocumentOut,
    DocumentsResponse,
    ErrorOut,
    HeadingOut,
    PageOut,
    PageSummary,
    SearchRequest,
    SearchResponse,
)
from service.settings import Settings

log = logging.getLogger("chancery")


class NotFoundError(Exception):
    """A document or page the client asked for does not exist."""


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


Live = Annotated[Engine, Depends(_engine)]


def create_app(settings: Settings, embedder: Embedder | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The model loads once per process, before the first request is accepted.
        # One torch and one FAISS thread per request: with two, a query waits on a core another
        # request holds (12 ms becomes hundreds; flat search at 10k goes from 0.3 ms to 1-16 ms);
        # concurrency comes from the server's thread pool instead.
        threads = settings.embed_threads or 1
        faiss.omp_set_num_threads(1)
        app.state.engine = Engine(
            settings.index_dir,
            embedder or make_embedder(settings, threads=threads),
            settings.answer_config(),
        )
        yield

    app = FastAPI(
        title="Chancery",
        summary="Answers from reports, every claim cited to a page.",
        version="0.1.0",
        lifespan=lifespan,
        responses={
            404: {"model": ErrorOut},
            422: {"model": ErrorOut},
            503: {"model": ErrorOut},
        },
    )

    @app.post("/v1/ask", response_model=AskResponse, tags=["answers"])
    def ask(request: AskRequest, live: Live) -> AskResponse:
        """A short answer built from the documents, each sentence cited to a page."""
        return live.ask(request.question, request.k, request.docs)

    @app.post("/v1/search", response_model=SearchResponse, tags=["answers"])
    def search(request: SearchRequest, live: Live) -> SearchResponse:
        """The best passages for a question, with their pages."""
        return SearchResponse(
            hits=live.search(request.question, request.k, request.mode, request.docs)
        )

    @app.get("/v1/documents", response_model=DocumentsResponse, tags=["documents"])
    def documents(live: Live) -> DocumentsResponse:
        snapshot = live.snapshot()
        return DocumentsResponse(
            documents=[
                DocumentOut(
                    doc_id=d.doc_id,
                    file_name=d.file_name,
                    title=d.title,
                    sha256=d.sha256,
                    pages=d.page_count,
                )
                for d in snapshot.index.documents()
            ],
            index_version=snapshot.index.version,
        )

    @app.get("/v1/documents/{doc_id}", response_model=DocumentDetail, tags=["documents"])
    def document(doc_id: str, live: Live) -> DocumentDetail:
        records = live.snapshot().index.records
        found = records.document(doc_id)
        if found is None:
            raise NotFoundError(f"no document '{doc_id}'")
        return DocumentDetail(
            doc_id=found.doc_id,
            file_name=found.file_name,
            title=found.title,
            sha256=found.sha256,
            pages=len(found.pages),
            page_list=[
                PageSummary(
                    number=p.number,
                    label=p.label,
                    headings=[HeadingOut(text=h.text, level=h.level) for h in p.headings],
                )
                for p in found.pages
            ],
        )

    @app.get("/v1/documents/{doc_id}/pages/{number}", response_model=PageOut, tags=["documents"])
    def page(doc_id: str, number: int, live: Live) -> PageOut:
        """The stored text of one page: what a citation points to."""
        records = live.snapshot().index.records
        info = next((d for d in records.documents() if d.doc_id == doc_id), None)
        if info is None:
            raise NotFoundError(f"no document '{doc_id}'")
        # Range-check first: SQLite cannot even bind an integer past 64 bits.
        found = records.page(doc_id, number) if 1 <= number <= info.page_count else None
        if found is None:
            raise NotFoundError(
                f"'{doc_id}' has pages 1 to {info.page_count}; there is no page {number}"
            )
        return PageOut(
            doc_id=doc_id,
            doc=info.file_name,
            number=found.number,
            label=found.label,
            text=found.text,
            headings=[HeadingOut(text=h.text, level=h.level) for h in found.headings],
        )

    @app.get("/v1/index", tags=["documents"])
    def index_manifest(live: Live) -> dict[str, Any]:
        """What built the index in service: model, chunking, documents, library versions."""
        snapshot = live.snapshot()
        return {"version": snapshot.index.version, **asdict(snapshot.index.manifest)}

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz(live: Live) -> dict[str, str]:
        """The model is loaded and an index is ready to answer."""
        snapshot = live.snapshot()
        return {"status": "ready", "index_version": snapshot.index.version}

    _install_error_handlers(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    def error(status: int, detail: str) -> JSONResponse:
        return JSONResponse(status_code=status, content={"detail": detail})

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for problem in exc.errors():
            if problem.get("type") == "json_invalid":
                problems.append("the request body is not valid JSON")
                continue
            where = ".".join(str(part) for part in problem.get("loc", ()) if part != "body")
            message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        return error(422, "; ".join(problems) or "the request is not valid")

    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return error(404, str(exc))

    @app.exception_handler(UnknownDocumentError)
    async def unknown_document(_: Request, exc: UnknownDocumentError) -> JSONResponse:
        return error(404, str(exc))

    @app.exception_handler(StoreError)
    async def unusable_index(_: Request, exc: StoreError) -> JSONResponse:
        return error(503, str(exc))

    @app.exception_handler(NoIndexError)
    async def no_index(_: Request, exc: NoIndexError) -> JSONResponse:
        return error(503, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error(500, "internal error; the server log has the details")
