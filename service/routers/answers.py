"""Answers and search: `/v1/ask`, `/v1/search`."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import Live
from service.routers.mapping import ask_response, search_response
from service.routers.openapi import errors
from service.schemas import AskRequest, AskResponse, SearchRequest, SearchResponse

router = APIRouter(tags=["answers"])


@router.post("/ask", response_model=AskResponse, responses=errors(404, 413, 422, 503))
def ask(request: AskRequest, engine: Live) -> AskResponse:
    """A short answer built from the documents, each sentence cited to a page."""
    return ask_response(engine.ask(request.question, request.k, request.docs))


@router.post("/search", response_model=SearchResponse, responses=errors(404, 413, 422, 503))
def search(request: SearchRequest, engine: Live) -> SearchResponse:
    """The best passages for a question, with their pages."""
    return search_response(engine.search(request.question, request.k, request.mode, request.docs))
