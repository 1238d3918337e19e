"""Answers and search: `/ask`, `/search`, under `/v1` and under `/v1/collections/{name}`."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Generator, Iterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from service.answering import Answer, Drafting, Sentence
from service.auditing import answered, audit_log, caller, searched
from service.deps import EngineSource
from service.engine import AskPart, AskResult, Engine, Retrieved
from service.errors import translate
from service.metrics import Metrics, stages_from_timings
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
        request: AskRequest, http: Request, engine: Engine = Depends(engine_of)
    ) -> AskResponse | StreamingResponse:
        """A short answer built from the documents, each sentence cited to a page."""
        started = time.perf_counter()
        record = _recorder(http, request.question, started)
        if not request.stream:
            result = engine.ask(request.question, request.k, request.docs, request.answerer)
            record(result)
            return ask_response(result)
        parts = engine.stream(request.question, request.k, request.docs, request.answerer)
        first = prefetch(parts)
        return StreamingResponse(
            relay(_events(first, parts, record)), media_type="text/event-stream"
        )

    @routes.post("/search", response_model=SearchResponse, responses=failures)
    def search(
        request: SearchRequest, http: Request, engine: Engine = Depends(engine_of)
    ) -> SearchResponse:
        """The best passages for a question, with their pages."""
        started = time.perf_counter()
        found = engine.search(
            request.question, request.k, request.mode, request.docs, request.distinct_pages
        )
        log_ = audit_log(http)
        if log_ is not None:
            pages = [(hit.file_name, hit.chunk.page_start) for hit in found.hits]
            log_.record(
                searched(
                    caller(http),
                    request.question,
                    found.collection,
                    found.index_version,
                    pages,
                    started,
                )
            )
        return search_response(found)

    return routes


def _recorder(http: Request, question: str, started: float) -> Callable[[AskResult], None]:
    """Records an answer in the audit log (and the metrics), durably, before it is sent; who
    asked is read now, while the request's context is at hand."""
    log_ = audit_log(http)
    metrics: Metrics | None = getattr(http.app.state, "metrics", None)
    who = caller(http)

    def record(result: AskResult) -> None:
        if metrics is not None:
            answer = result.answer
            metrics.observe_answer(
                collection=result.collection,
                answerer=answer.answerer,
                abstained=answer.abstained,
                dropped=len(answer.dropped),
                stages=stages_from_timings(result.timings_ms),
            )
        if log_ is not None:
            log_.record(answered(who, question, result, started))

    return record


def _events(
    head: list[AskPart],
    rest: Generator[AskPart, None, None],
    record: Callable[[AskResult], None],
) -> Generator[str, None, None]:
    """The stream's events, `head` first; closing this closes `rest`. The answer is recorded
    before its last event goes out."""
    try:
        for part in itertools.chain(head, rest):
            if isinstance(part, AskResult):
                record(part)
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
