"""The HTTP API: `create_app` assembles the routers, the body limit and the error handlers.

`service.build.build_app` is the usual way in: it decides what the engine is made of.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.engine import Engine
from service.handlers import install_error_handlers
from service.limits import BodyLimit
from service.routers import answers, documents, ops
from service.settings import Settings


def create_app(settings: Settings, start: Callable[[], Engine]) -> FastAPI:
    """The app; `start` builds its engine (loading the model) once per process, before the
    first request is accepted."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = start()
        yield

    app = FastAPI(
        title="Chancery",
        summary="Answers from reports, every claim cited to a page.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.include_router(answers.router, prefix="/v1")
    app.include_router(documents.router, prefix="/v1")
    app.include_router(ops.router)
    install_error_handlers(app)
    return app
