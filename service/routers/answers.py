"""Answers and search: `/ask`, `/search`, under `/v1` and under `/v1/collections/{name}`."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from service.deps import EngineSource
from service.engine import Engine
from service.routers.mapping import ask_response, search_response
from service.routers.openapi import errors
from service.schemas import AskRequest, AskResponse, SearchRequest, SearchResponse


def router(source: EngineSource) -> APIRouter:
    """The routes, answering from the engine `source` gives (the default collection's, or the
    one the path names)."""
    routes = APIRouter(tags=["answers"])
    engine_of = source.dependency
    failures = errors(*{404, 413, 422, 503, *source.errors})

    @routes.post("/ask", response_model=AskResponse, responses=failures)
    def ask(request: AskRequest, engine: Engine = Depends(engine_of)) -> AskResponse:
        """A short answer built from the documents, each sentence cited to a page."""
        return ask_response(engine.ask(request.question, request.k, request.docs))

    @routes.post("/search", response_model=SearchResponse, responses=failures)
    def search(request: SearchRequest, engine: Engine = Depends(engine_of)) -> SearchResponse:
        """The best passages for a question, with their pages."""
        return search_response(
            engine.search(request.question, request.k, request.mode, request.docs)
        )

    return routes
