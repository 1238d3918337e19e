"""Errors of the OpenAI-compatible routes, in OpenAI's envelope rather than Chancery's `detail`.

OpenAI's clients read `{"error": {"message", "type", "param", "code"}}` and raise it as
`BadRequestError`, `NotFoundError`, ...; a client built on them shows that message. So these
routes answer every error so, validation errors included (as a 400, as OpenAI does), through
their own route class: the app's handlers, which other routes rely on, stay as they are. The
one exception is a body over the size limit, which the body-limit middleware refuses, often
before any route runs, in Chancery's format.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from service.chat_schemas import ChatError, ChatErrorBody
from service.errors import ChanceryError, NotFoundError, translate
from service.limits import BodyTooLarge
from service.schemas import ErrorOut

log = logging.getLogger("chancery")

UNSUPPORTED = "unsupported_parameter"
_NO_TOOLS = "Chancery answers from its documents and calls no tools"
_REFUSED = {
    "tools": f"tools are not supported: {_NO_TOOLS}",
    "tool_choice": f"tool_choice can only be 'none': {_NO_TOOLS}",
    "functions": f"functions are not supported: {_NO_TOOLS}",
    "function_call": f"function_call can only be 'none': {_NO_TOOLS}",
    "n": "n must be 1: Chancery writes one answer per request",
    "logprobs": "logprobs are not offered: the answer's sentences are quoted or verified, "
    "not sampled token by token",
    "top_logprobs": "top_logprobs are not offered",
    "response_format": "response_format can only be text: the answer is text with citation "
    "markers, and its citations come structured in `citations`",
}
"""What a parameter Chancery cannot honour is refused with."""
_TEXT_ONLY = "only text content is supported; image, audio and file parts are not"
_NO_TOOL_MESSAGES = "messages of role tool or function are not supported: no tools are offered"

_DESCRIPTIONS = {
    400: "The request is not valid, or asks for what Chancery does not offer (tools, images, "
    "several choices, log-probabilities, a generative answer without an LLM configured); "
    "`error.param` names the parameter.",
    404: "No such model: `GET /v1/models` lists them (one per collection).",
    503: "There is no usable index yet, or the LLM failed and no fallback is configured.",
}


class ChatRequestError(ChanceryError):
    """A chat request Chancery cannot answer as sent; `param` names the parameter."""

    status = 400

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


class ModelNotFoundError(NotFoundError):
    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model '{model}' does not exist: GET /v1/models lists the models, one per "
            "collection ('chancery' for the collection 'default', 'chancery/NAME' for others)"
        )


def openai_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error responses of a route, for its OpenAPI description: the envelope, and a 413 in
    Chancery's format."""
    described: dict[int | str, dict[str, Any]] = {
        413: {
            "model": ErrorOut,
            "description": "The request body is over the size limit; the detail says so.",
        }
    }
    for status in statuses:
        described[status] = {"model": ChatError, "description": _DESCRIPTIONS[status]}
    return dict(sorted(described.items(), key=lambda item: int(item[0])))


def envelope(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> JSONResponse:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = ChatError(error=ChatErrorBody(message=message, type=kind, param=param, code=code))
    return JSONResponse(status_code=status, content=body.model_dump())


class OpenAIRoute(APIRoute):
    """A route whose errors go out in OpenAI's envelope."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as exc:
                return invalid(exc.errors())
            except BodyTooLarge:
                raise  # the app's format, as the middleware answers it before any route
            except HTTPException as exc:
                # FastAPI's 400 for a body that is not UTF-8 or nests too deeply.
                return envelope(exc.status_code, str(exc.detail))
            except ChatRequestError as exc:
                return envelope(exc.status, str(exc), exc.param, exc.code)
            except ModelNotFoundError as exc:
                return envelope(404, str(exc), "model", "model_not_found")
            except Exception as exc:
                error = translate(exc)
                if error is None:
                    log.exception("unexpected error on %s %s", request.method, request.url.path)
                    return envelope(500, "internal error; the server log has the details")
                return envelope(error.status, str(error))

        return route


def invalid(problems: Sequence[Any]) -> JSONResponse:
    """A validation failure as a 400, its message in words; a parameter Chancery does not
    offer is named as such."""
    messages: list[str] = []
    params: list[str] = []
    for problem in problems:
        loc = [part for part in problem.get("loc", ()) if part != "body"]
        param = _param(loc)
        refused = _refusal(loc, problem)
        if refused is not None:
            # One refusal says it all; the other members of a union repeat it in other words.
            # The parameter, or the content part, not the field inside it that failed.
            named = str(loc[0]) if loc[0] in _REFUSED else _param(loc[:-1])
            return envelope(400, refused, named, UNSUPPORTED)
        if problem.get("type") == "json_invalid":
            messages.append("the request body is not valid JSON")
            continue
        message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
        messages.append(f"{param}: {message}" if param else message)
        params.append(param)
    message = "; ".join(messages) or "the request is not valid"
    return envelope(400, message, params[0] if params else None)


def _refusal(loc: list[Any], problem: Any) -> str | None:
    if loc and loc[0] in _REFUSED:
        return _REFUSED[str(loc[0])]
    if len(loc) >= 3 and loc[0] == "messages":
        if loc[2] == "role" and problem.get("input") in ("tool", "function"):
            return _NO_TOOL_MESSAGES
        if loc[2] == "content" and loc[-1] == "type" and problem.get("type") == "literal_error":
            return _TEXT_ONLY
    return None


def _param(loc: list[Any]) -> str:
    """`messages[1].content`, as OpenAI names a parameter; a union member's name (`str`,
    `list[TextPart]`) is left out."""
    named = ""
    for part in loc:
        if isinstance(part, int):
            named += f"[{part}]"
        elif "[" in str(part) or str(part) in ("str", "int", "float", "bool", "none"):
            continue
        else:
            named += f".{part}" if named else str(part)
    return named
