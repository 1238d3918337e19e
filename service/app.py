"""The HTTP API: `create_app(settings)`. Routes stay thin; errors become statuses in one place."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
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
from service.limits import BodyLimit
from service.model import make_embedder
from service.schemas import (
    AskRequest,
    AskResponse,
    DocumentDetail,
    DocumentOut,
    DocumentsResponse,
    ErrorOut,
    HeadingOut,
    HealthResponse,
    IndexResponse,
    PageOut,
    PageSummary,
    ReadyResponse,
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

_ERRORS = {
    404: "No such document or page.",
    413: "The request body is over the size limit.",
    422: "The request is not valid; the detail says why.",
    503: "There is no usable index yet; the detail says what to do.",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error responses a route can give, for its OpenAPI description."""
    return {status: {"model": ErrorOut, "description": _ERRORS[status]} for status in statuses}


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
            embedder or make_embedder(settings, threads=threads).load(),
            settings.answer_config(),
        )
        yield

    app = FastAPI(
        title="Chancery",
        summary="Answers from reports, every claim cited to a page.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    @app.post(
        "/v1/ask",
        response_model=AskResponse,
        responses=_errors(404, 413, 422, 503),
        tags=["answers"],
    )
    def ask(request: AskRequest, live: Live) -> AskResponse:
        """A short answer built from the documents, each sentence cited to a page."""
        return live.ask(request.question, request.k, request.docs)

    @app.post(
        "/v1/search",
        response_model=SearchResponse,
        responses=_errors(404, 413, 422, 503),
        tags=["answers"],
    )
    def search(request: SearchRequest, live: Live) -> SearchResponse:
        """The best passages for a question, with their pages."""
        return SearchResponse(
            hits=live.search(request.question, request.k, request.mode, request.docs)
        )

    @app.get(
        "/v1/documents",
        response_model=DocumentsResponse,
        responses=_errors(413, 503),
        tags=["documents"],
    )
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

    # 422 is listed where FastAPI would otherwise describe its own validation error body.
    @app.get(
        "/v1/documents/{doc_id}",
        response_model=DocumentDetail,
        responses=_errors(404, 413, 422, 503),
        tags=["documents"],
    )
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

    @app.get(
        "/v1/documents/{doc_id}/pages/{number}",
        response_model=PageOut,
        responses=_errors(404, 413, 422, 503),
        tags=["documents"],
    )
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

    @app.get(
        "/v1/index",
        response_model=IndexResponse,
        responses=_errors(413, 503),
        tags=["documents"],
    )
    def index_manifest(live: Live) -> IndexResponse:
        """What built the index in service: model, chunking, documents, library versions."""
        snapshot = live.snapshot()
        manifest = asdict(snapshot.index.manifest)
        return IndexResponse.model_validate({"version": snapshot.index.version, **manifest})

    @app.get("/healthz", response_model=HealthResponse, responses=_errors(413), tags=["operations"])
    def healthz() -> HealthResponse:
        """The process is up."""
        return HealthResponse(status="ok")

    @app.get(
        "/readyz",
        response_model=ReadyResponse,
        responses=_errors(413, 503),
        tags=["operations"],
    )
    def readyz(live: Live) -> ReadyResponse:
        """The model is loaded and an index is ready to answer."""
        snapshot = live.snapshot()
        return ReadyResponse(status="ready", index_version=snapshot.index.version)

    _install_error_handlers(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    def error(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
        return JSONResponse(status_code=status, content={"detail": detail}, headers=headers)

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
        # FastAPI answers 400 "error parsing the body", raised from the parser's exception, when
        # JSON fails for a reason other than syntax; to a client that is one more invalid request.
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
            return error(422, _unparsable(exc.__cause__))
        return error(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error(500, "internal error; the server log has the details")


def _unparsable(cause: ValueError | RecursionError) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return f"the request body is not valid {cause.encoding.upper()} (byte {cause.start})"
    if isinstance(cause, RecursionError):
        return "the request body nests arrays or objects too deeply"
    # For instance "Exceeds the limit (4300 digits) for integer string conversion"; what follows
    # the semicolon is advice for the server's programmer.
    return f"the request body is not valid JSON: {str(cause).split(';')[0]}"
