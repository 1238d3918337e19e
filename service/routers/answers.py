"""Answers and search: `/ask`, `/search`, under `/v1` and under `/v1/collections/{name}`."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from service.deps import EngineSource
from service.engine import Engine
from service.routers.mapping import ask_events, ask_response, search_response
from service.routers.openapi import errors, event_stream
from service.schemas import (
    AbstainedEvent,
    AskRequest,
    AskResponse,
    DoneEvent,
    PassagesEvent,
    SearchRequest,
    SearchResponse,
    SentenceEvent,
)


def router(source: EngineSource) -> APIRouter:
    """The routes, answering from the engine `source` gives (the default collection's, or the
    one the path names)."""
    routes = APIRouter(tags=["answers"])
    engine_of = source.dependency
    failures = errors(*{404, 413, 422, 503, *source.errors})

    streamed = event_stream(
        "The answer: JSON, or with `stream` server-sent events `passages`, `sentence` (or "
        "`abstained`) and `done`, each with a JSON `data` line.",
        {
            "passages": PassagesEvent,
            "sentence": SentenceEvent,
            "abstained": AbstainedEvent,
            "done": DoneEvent,
        },
    )

    @routes.post("/ask", response_model=AskResponse, responses={**failures, **streamed})
    def ask(
        request: AskRequest, engine: Engine = Depends(engine_of)
    ) -> AskResponse | StreamingResponse:
        """A short answer built from the documents, each sentence cited to a page."""
        result = engine.ask(request.question, request.k, request.docs)
        if request.stream:
            # The events are built before the first is sent, so an error is still an HTTP
            # status; the extractive answer is whole as soon as it is computed anyway.
            events = [_event(name, data) for name, data in ask_events(result)]
            return StreamingResponse(iter(events), media_type="text/event-stream")
        return ask_response(result)

    @routes.post("/search", response_model=SearchResponse, responses=failures)
    def search(request: SearchRequest, engine: Engine = Depends(engine_of)) -> SearchResponse:
        """The best passages for a question, with their pages."""
        return search_response(
            engine.search(request.question, request.k, request.mode, request.docs)
        )

    return routes


def _event(name: str, data: BaseModel) -> str:
    """One server-sent event; JSON holds no raw newline, so `data` is one line."""
    return f"event: {name}\ndata: {data.model_dump_json()}\n\n"
