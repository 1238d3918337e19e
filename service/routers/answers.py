"""Answers and search: `/ask`, `/search`, under `/v1` and under `/v1/collections/{name}`."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Generator, Iterator

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from service.answering import Answer, Drafting, Sentence
from service.deps import EngineSource
from service.engine import AskPart, AskResult, Engine, Retrieved
from service.errors import translate
from service.routers.mapping import (
    ask_response,
    closing_events,
    passages_event,
    search_response,
    sentence_event,
)
from service.routers.openapi import errors, event_stream
from service.routers.streaming import prefetch, relay
from service.schemas import (
    AbstainedEvent,
    AskRequest,
    AskResponse,
    DoneEvent,
    ErrorEvent,
    PassagesEvent,
    SearchRequest,
    SearchResponse,
    SentenceEvent,
)

log = logging.getLogger("chancery")


def router(source: EngineSource) -> APIRouter:
    """The routes, answering from the engine `source` gives (the default collection's, or the
    one the path names)."""
    routes = APIRouter(tags=["answers"])
    engine_of = source.dependency
    failures = errors(*{404, 413, 422, 503, *source.errors})
    ask_failures = errors(*{400, 404, 413, 422, 503, *source.errors})

    streamed = event_stream(
        "The answer: JSON, or with `stream` server-sent events `passages`, `sentence` (or "
        "`abstained`) and `done`, each with a JSON `data` line; `error` in place of `done` "
        "when the answer fails after the stream began.",
        {
            "passages": PassagesEvent,
            "sentence": SentenceEvent,
            "abstained": AbstainedEvent,
            "done": DoneEvent,
            "error": ErrorEvent,
        },
    )

    @routes.post("/ask", response_model=AskResponse, responses={**ask_failures, **streamed})
    def ask(
        request: AskRequest, engine: Engine = Depends(engine_of)
    ) -> AskResponse | StreamingResponse:
        """A short answer built from the documents, each sentence cited to a page."""
        if not request.stream:
            return ask_response(
                engine.ask(request.question, request.k, request.docs, request.answerer)
            )
        parts = engine.stream(request.question, request.k, request.docs, request.answerer)
        first = prefetch(parts)
        return StreamingResponse(relay(_events(first, parts)), media_type="text/event-stream")

    @routes.post("/search", response_model=SearchResponse, responses=failures)
    def search(request: SearchRequest, engine: Engine = Depends(engine_of)) -> SearchResponse:
        """The best passages for a question, with their pages."""
        return search_response(
            engine.search(request.question, request.k, request.mode, request.docs)
        )

    return routes


def _events(
    head: list[AskPart], rest: Generator[AskPart, None, None]
) -> Generator[str, None, None]:
    """The stream's events, `head` first; closing this closes `rest`."""
    try:
        for part in itertools.chain(head, rest):
            yield from _part_events(part)
    except Exception as exc:
        # The status is sent: a failure now can only be said in the stream.
        error = translate(exc)
        if error is None:
            log.exception("a streamed answer failed")
        yield _event("error", ErrorEvent(detail=str(error) if error else "internal error"))
    finally:
        rest.close()


def _part_events(part: AskPart) -> Iterator[str]:
    if isinstance(part, Retrieved):
        yield _event("passages", passages_event(part))
    elif isinstance(part, Sentence):
        yield _event("sentence", sentence_event(part))
    elif isinstance(part, AskResult):
        for name, data in closing_events(part):
            yield _event(name, data)
    elif isinstance(part, Drafting | Answer):
        pass  # Drafting only marks a point in time; the Answer comes wrapped in AskResult


def _event(name: str, data: BaseModel) -> str:
    """One server-sent event; JSON holds no raw newline, so `data` is one line."""
    return f"event: {name}\ndata: {data.model_dump_json()}\n\n"
