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
from fastapi_offline import FastAPIOffline

from service.access import Access
from service.audit import AuditLog, audit_folder
from service.data_root import DataRoot
from service.deps import DEFAULT_ENGINE, NAMED_ENGINE
from service.engine import DEFAULT_COLLECTION
from service.errors import ChanceryError
from service.handlers import install_error_handlers
from service.http_safety import CorsPolicy, SecurityHeaders, TrustedHosts
from service.jobs import Job
from service.keys import KeyStore
from service.library import Library
from service.limits import Allowance, BodyLimit
from service.mcp_http import McpEndpoint
from service.mcp_server import build_mcp_server
from service.metrics import IndexStats, Metrics, RequestMetrics
from service.multipart import MAX_PART_HEADER_BYTES
from service.page_images import PageCache, PageImages
from service.pdf_workers import PdfWorkers
from service.rate_limit import FailedAuthTracker, RateLimiter
from service.request_context import RequestId
from service.routers import (
    answers,
    chat,
    collections,
    documents,
    jobs,
    openapi,
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
DOCS_FILES = "/docs-files"
"""Where the API docs pages' scripts and styles are served (public, as the pages are)."""
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
        _count_jobs(library, metrics)
        try:
            # The MCP transport's sessions live as long as the app serves.
            async with mcp.running():
                yield
        finally:
            # Waits a while for running jobs, off the event loop.
            await asyncio.to_thread(library.stop)
            await asyncio.to_thread(images.close)
            if audit is not None:
                audit.close()
            keys.close()

    # /docs and /redoc load their scripts from files bundled with the package, not from a CDN
    # that an air-gapped site cannot reach.
    app = FastAPIOffline(
        static_url=DOCS_FILES,
        title="Chancery",
        summary="Answers from reports, every claim cited to a page.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    images = page_images(settings)
    keys = KeyStore(settings.data_dir)
    audit = (
        AuditLog(
            audit_folder(settings.data_dir, settings.audit_dir),
            store_text=settings.audit_text,
        )
        if settings.audit
        else None
    )
    metrics = Metrics(lambda: _index_stats(app))
    app.state.keys, app.state.audit, app.state.metrics = keys, audit, metrics
    # The MCP tools read the library the lifespan starts and record each call in the audit
    # log, as the routes do.
    mcp = McpEndpoint(build_mcp_server(lambda: app.state.library, DEFAULT_COLLECTION, audit=audit))
    limits = upload_limits(settings)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        allowances=[
            Allowance("POST", UPLOAD_PATH, upload_body_bytes(limits)),
            Allowance("POST", CHAT_PATH, max(CHAT_BODY_BYTES, settings.max_body_bytes)),
        ],
    )
    # Added last is outermost. Every response, a refusal included, gets an id, the security
    # headers and a count; the Host check comes before anything else reads the request; a
    # preflight (which carries no key) is answered before the key is asked for.
    limiter = (
        RateLimiter(settings.rate_limit_rps, settings.rate_limit_burst)
        if settings.rate_limit_rps
        else None
    )
    brake = FailedAuthTracker(
        threshold=settings.auth_failures,
        window=settings.auth_failure_window_s,
        penalty=settings.auth_block_s,
        max_penalty=settings.auth_block_max_s,
    )
    # Refusals (401, 403, 429) are recorded in the audit log too.
    app.add_middleware(Access, keys=keys, limiter=limiter, brake=brake, audit=audit)
    app.add_middleware(CorsPolicy, origins=settings.cors_origins)
    app.add_middleware(TrustedHosts, hosts=settings.trusted_hosts)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestId)
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
    openapi.install(app)
    web.install(app)
    app.router.routes.append(mcp.route())
    install_error_handlers(app)
    return app


def _count_jobs(library: Library, metrics: Metrics) -> None:
    """Count each ingest job as it ends, with the pages it added; only a data root runs jobs."""
    if not isinstance(library, DataRoot):
        return

    def observe(job: Job) -> None:
        metrics.observe_job(
            collection=job.spec.collection, outcome=job.state.value, pages=job.pages_ingested
        )

    library.runner.on_finish(observe)


def _index_stats(app: FastAPI) -> list[IndexStats]:
    """Each collection's index, read when metrics are scraped (an ingest from the command line
    shows up too); nothing before the library has started."""
    library: Library | None = getattr(app.state, "library", None)
    if library is None:
        return []
    settings: Settings = app.state.settings
    return [
        IndexStats(c.name, c.index_version, c.documents, _chunks(settings, c.name))
        for c in library.collections()
    ]


def _chunks(settings: Settings, collection: str) -> int:
    from index.store import StoreError, current_version, read_manifest
    from service.build import collection_index, index_folder

    try:
        root = (
            index_folder(settings) if settings.index_dir else collection_index(settings, collection)
        )
        version = current_version(root)
        return read_manifest(version).chunk_count if version else 0
    except (StoreError, ChanceryError, OSError):
        return 0
