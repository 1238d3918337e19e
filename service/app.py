"""The HTTP API: `create_app` assembles the routers, the body limit and the error handlers.

`service.build.build_app` is the usual way in: it decides what the library (the collections and
their engines) is made of. The answer and document routes exist twice, built from one router
each: under `/v1` for the collection `default`, and under `/v1/collections/{name}`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.deps import DEFAULT_ENGINE, NAMED_ENGINE
from service.engine import DEFAULT_COLLECTION
from service.handlers import install_error_handlers
from service.library import Library
from service.limits import Allowance, BodyLimit
from service.mcp_http import McpEndpoint
from service.mcp_server import build_mcp_server
from service.multipart import MAX_PART_HEADER_BYTES
from service.page_images import PageCache, PageImages
from service.pdf_workers import PdfWorkers
from service.routers import (
    answers,
    chat,
    collections,
    documents,
    jobs,
    ops,
    pages,
    uploads,
    web,
)
from service.settings import Settings
from service.uploads import UploadLimits

COLLECTION_PREFIX = "/v1/collections/{name}"
UPLOAD_PATH = re.compile(r"/v1/collections/[^/]+/documents")
CHAT_PATH = re.compile(r"/v1/chat/completions")
CHAT_BODY_BYTES = 1024 * 1024
"""A chat request carries the whole conversation, each earlier answer with its sources."""
PAGE_CACHE = "cache/pages"
_BOUNDARY_BYTES = 512
"""A part's boundary line and blank lines, generously: a boundary is at most 70 characters."""


def upload_limits(settings: Settings) -> UploadLimits:
    """Per file (as `chancery ingest` allows), files per request, bytes per request."""
    return UploadLimits(
        max_file_bytes=settings.max_file_bytes,
        max_files=settings.max_upload_files,
        max_total_bytes=settings.max_upload_bytes,
    )


def upload_body_bytes(limits: UploadLimits) -> int:
    """The largest upload body the limits allow: the files, and the headers and boundaries of
    one part more than the count allows (that part is refused once its headers are read)."""
    return limits.max_total_bytes + (limits.max_files + 1) * (
        MAX_PART_HEADER_BYTES + _BOUNDARY_BYTES
    )


def page_images(settings: Settings) -> PageImages:
    """Page images cached in the data root, shared by its collections; PDFium's workers start
    on the first page drawn."""
    return PageImages(PageCache(settings.data_dir / PAGE_CACHE), PdfWorkers())


def create_app(settings: Settings, start: Callable[[], Library]) -> FastAPI:
    """The app; `start` makes its library ready (loading the model) once per process, before the
    first request is accepted; the library stops when the app shuts down."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        library = start()
        app.state.library = library
        try:
            # The MCP transport's sessions live as long as the app serves.
            async with mcp.running():
                yield
        finally:
            # Waits a while for running jobs, off the event loop.
            await asyncio.to_thread(library.stop)
            await asyncio.to_thread(images.close)

    app = FastAPI(
        title="Chancery",
        summary="Answers from reports, every claim cited to a page.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    images = page_images(settings)
    # The MCP tools read the library the lifespan starts, as the routes do.
    mcp = McpEndpoint(build_mcp_server(lambda: app.state.library, DEFAULT_COLLECTION))
    limits = upload_limits(settings)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        allowances=[
            Allowance("POST", UPLOAD_PATH, upload_body_bytes(limits)),
            Allowance("POST", CHAT_PATH, max(CHAT_BODY_BYTES, settings.max_body_bytes)),
        ],
    )
    app.include_router(answers.router(DEFAULT_ENGINE), prefix="/v1")
    app.include_router(documents.router(DEFAULT_ENGINE), prefix="/v1")
    app.include_router(pages.router(DEFAULT_ENGINE, images), prefix="/v1")
    app.include_router(collections.router, prefix="/v1")
    app.include_router(answers.router(NAMED_ENGINE), prefix=COLLECTION_PREFIX)
    app.include_router(documents.router(NAMED_ENGINE), prefix=COLLECTION_PREFIX)
    app.include_router(pages.router(NAMED_ENGINE, images), prefix=COLLECTION_PREFIX)
    app.include_router(uploads.router(limits), prefix="/v1")
    app.include_router(jobs.router, prefix="/v1")
    chat.install(app, settings)
    app.include_router(ops.router)
    web.install(app)
    app.router.routes.append(mcp.route())
    install_error_handlers(app)
    return app
