"""The OpenAI-compatible API: `POST /v1/chat/completions` and `GET /v1/models`.

Chat tools (Open WebUI, LibreChat) and every OpenAI SDK speak it. A model is a collection
(`chancery` is `default`, `chancery/NAME` is NAME); the answer is the one `/v1/ask` gives, its
citations structured in extra fields the official clients keep (`message.citations`, top-level
`citations`, per chunk `delta.citations`), and its content readable without them. Errors come in
OpenAI's envelope (`chat_errors`).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
import uuid
from collections.abc import Callable, Generator, Sequence
from functools import cached_property
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from service.access import current_key
from service.answering import Sentence
from service.auditing import answered, audit_log, caller
from service.chat_schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatError,
    ChatErrorBody,
    ChatMessage,
    ModelList,
    ModelOut,
    Usage,
)
from service.collections import CollectionNotFoundError, InvalidCollectionNameError
from service.deps import Holdings
from service.engine import AskPart, AskResult
from service.errors import ForbiddenError, translate
from service.followup import LlmRewriter, Turn, standalone
from service.llm import LlmOptions, TokenUsage
from service.routers.chat_errors import (
    ChatRequestError,
    ModelNotFoundError,
    OpenAIRoute,
    openai_errors,
)
from service.routers.chat_mapping import Chunks, Exchange, collection_of, completion, model_id
from service.routers.streaming import prefetch, relay
from service.schemas import MAX_QUESTION_CHARS, AskRequest
from service.settings import Settings
from service.usage import TokenCount, usage

log = logging.getLogger("chancery")

PASSAGES: int = AskRequest.model_fields["k"].default
"""Passages an answer reads, as `/v1/ask` reads by default."""
_STREAM_DESCRIPTION = (
    "The answer: a `chat.completion`, or with `stream` server-sent events, each a `data:` line "
    "holding a `chat.completion.chunk` (the role; one chunk per verified sentence with its "
    "`citations`; a last chunk with the rest of the content, every citation and `chancery`; "
    "with `stream_options.include_usage`, a chunk with `usage` and no choices), then "
    "`data: [DONE]`. A failure after the stream began is a `data:` line holding an error "
    "envelope, and the stream ends there."
)


class _Tools:
    """What the routes build once per app, when first needed: the LLM that rewrites follow-ups
    (importing LangChain takes a second) and the tokenizer that estimates usage."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @cached_property
    def rewriter(self) -> LlmRewriter | None:
        if not self._settings.llm_base_url:
            return None
        from service.build import llm_config
        from service.llm import LangChainChat

        return LlmRewriter(LangChainChat(llm_config(self._settings)))

    @cached_property
    def pieces(self) -> TokenCount:
        from index.tokenizer import ModelTokenizer
        from service.build import model_dir

        return ModelTokenizer.from_model_dir(model_dir(self._settings))


CHAT_PATHS = ("/v1/chat/completions", "/v1/models")


def install(app: FastAPI, settings: Settings) -> None:
    """The routes, under `/v1`, and their description. FastAPI describes a 422 for every route
    that takes a body; these answer an invalid request with OpenAI's 400 instead, so the 422
    (and its model, which no other route uses) is taken out of the description."""
    app.include_router(router(settings), prefix="/v1")
    describe = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = describe()
            for path in CHAT_PATHS:
                for operation in schema["paths"][path].values():
                    operation["responses"].pop("422", None)
            if "HTTPValidationError" not in json.dumps(schema["paths"]):
                for unused in ("HTTPValidationError", "ValidationError"):
                    schema.get("components", {}).get("schemas", {}).pop(unused, None)
        return app.openapi_schema or describe()

    # FastAPI's documented way to change the description.
    app.openapi = openapi  # type: ignore[method-assign]


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(tags=["openai"], route_class=OpenAIRoute)
    tools = _Tools(settings)

    @routes.get("/models", response_model=ModelList, responses=openai_errors(503))
    def models(library: Holdings) -> ModelList:
        """The models, one per collection: `chancery` for `default`, `chancery/NAME` for the
        others."""
        key = current_key()
        listed = sorted(
            info.name for info in library.collections() if key is None or key.sees(info.name)
        )
        return ModelList(data=[ModelOut(id=model_id(name), created=0) for name in listed])

    @routes.post(
        "/chat/completions",
        response_model=ChatCompletion,
        responses={
            **openai_errors(400, 404, 503),
            403: {
                "model": ChatError,
                "description": "The key may not use the collection the model names; "
                "`error.message` says which.",
            },
            200: {
                "description": _STREAM_DESCRIPTION,
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
        },
    )
    def chat_completions(
        body: ChatCompletionRequest, request: Request, library: Holdings
    ) -> ChatCompletion | StreamingResponse:
        """An answer from the collection the model names, each sentence cited to a page."""
        started = time.perf_counter()
        turns = _turns(body.messages)
        collection = collection_of(body.model)
        key = current_key()
        if key is not None and not key.sees(collection):
            raise ForbiddenError(
                f"the key '{key.name}' may not use the collection '{collection}' "
                f"(model '{body.model}')"
            )
        try:
            engine = library.engine(collection)
        except (CollectionNotFoundError, InvalidCollectionNameError) as exc:
            raise ModelNotFoundError(body.model) from exc
        engine.snapshot()  # no index: the 503 before any LLM is asked to rewrite
        reported = TokenUsage()
        options = LlmOptions(
            temperature=body.temperature,
            max_tokens=body.max_completion_tokens or body.max_tokens,
            usage=reported,
        )
        asked = standalone(turns, tools.rewriter, options)

        def usage_of(result: AskResult, content: str) -> tuple[Usage, str]:
            return usage(result, asked.question, content, reported, tools.pieces)

        exchange = Exchange(
            id=f"chatcmpl-{uuid.uuid4().hex}",
            created=int(time.time()),
            model=body.model,
            collection=collection,
            base_url=str(request.base_url).rstrip("/"),
            asked=asked,
            sources=body.sources,
            usage_of=usage_of,
        )
        audit = audit_log(request)
        who = caller(request)

        def record(result: AskResult) -> None:
            if audit is not None:
                audit.record(answered(who, asked.question, result, started))

        if not body.stream:
            result = engine.ask(asked.question, PASSAGES, None, body.answerer, llm=options)
            record(result)
            return completion(exchange, result)
        parts = engine.stream(asked.question, PASSAGES, None, body.answerer, llm=options)
        first = prefetch(parts)
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        events = _events(first, parts, Chunks(exchange, include_usage), record)
        return StreamingResponse(relay(events), media_type="text/event-stream")

    return routes


def _turns(messages: Sequence[ChatMessage]) -> list[Turn]:
    """The user and assistant turns, their text; system and developer messages are left out
    (the answer rests on the documents, and Chancery's own instructions say how it is written).
    The last message must be the user's question."""
    turns = []
    for message in messages:
        if message.role in ("user", "assistant"):
            turns.append(Turn(message.role, _text(message)))
    last = messages[-1]
    if last.role != "user" or not turns[-1].text.strip():
        raise ChatRequestError(
            "the last message must be the user's question, with text", "messages"
        )
    length = len(turns[-1].text.strip())
    if length > MAX_QUESTION_CHARS:
        raise ChatRequestError(
            f"the question (the last message) has {length} characters; the limit is "
            f"{MAX_QUESTION_CHARS}",
            f"messages[{len(messages) - 1}].content",
        )
    return turns


def _text(message: ChatMessage) -> str:
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    return "\n".join(part.text for part in message.content)


def _events(
    first: list[AskPart],
    rest: Generator[AskPart, None, None],
    chunks: Chunks,
    record: Callable[[AskResult], None],
) -> Generator[str, None, None]:
    """The stream's `data:` lines, `first` first; closing this closes `rest`. The answer is
    recorded in the audit log before its last chunks go out."""
    try:
        yield _data(chunks.opening())
        for part in itertools.chain(first, rest):
            if isinstance(part, Sentence):
                yield _data(chunks.sentence(part))
            elif isinstance(part, AskResult):
                record(part)
                for chunk in chunks.closing(part):
                    yield _data(chunk)
        yield "data: [DONE]\n\n"
    except Exception as exc:
        # The status is sent: a failure now can only be said in the stream, where the openai
        # client raises it as an APIError.
        error = translate(exc)
        if error is None:
            log.exception("a streamed chat answer failed")
        message = str(error) if error else "internal error; the server log has the details"
        kind = "server_error" if error is None or error.status >= 500 else "invalid_request_error"
        body = ChatError(error=ChatErrorBody(message=message, type=kind, param=None, code=None))
        yield _data(body)
    finally:
        rest.close()


def _data(payload: BaseModel) -> str:
    """One server-sent event; JSON holds no raw newline, so `data` is one line."""
    data = payload.model_dump(mode="json")
    if isinstance(payload, ChatCompletionChunk):
        # What a chunk does not carry is left out, as OpenAI leaves it out.
        data = {key: value for key, value in data.items() if value is not None}
        for choice in data["choices"]:
            choice["delta"] = {k: v for k, v in choice["delta"].items() if v is not None}
    return f"data: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"
