"""Every error the service sends, as `{"detail": "..."}` with its status, decided in one place.

Errors Chancery raises, and those of the lower layers, go through `service.errors.translate`;
the framework's own (validation, unknown route, wrong method, unparsable body) are reworded
here; anything else is a 500 whose details stay in the server log.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.errors import ChanceryError, lower_layer_errors, translate

log = logging.getLogger("chancery")


def install_error_handlers(app: FastAPI) -> None:
    app.exception_handler(RequestValidationError)(_invalid)
    app.exception_handler(StarletteHTTPException)(_http_error)
    # Registered per family, not under Exception: Starlette hands an Exception handler's errors
    # to its server-error layer, which logs them as crashes and re-raises them.
    families: tuple[type[Exception], ...] = (ChanceryError, *lower_layer_errors())
    for family in families:
        app.exception_handler(family)(_chancery_error)
    app.exception_handler(Exception)(_unexpected)


def _error(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail}, headers=headers)


async def _chancery_error(request: Request, exc: Exception) -> JSONResponse:
    error = translate(exc)
    if error is None:
        return await _unexpected(request, exc)
    return _error(error.status, str(error))


async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for problem in exc.errors():
        if problem.get("type") == "json_invalid":
            problems.append("the request body is not valid JSON")
            continue
        where = ".".join(str(part) for part in problem.get("loc", ()) if part != "body")
        message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return _error(422, "; ".join(problems) or "the request is not valid")


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    # FastAPI answers 400 "error parsing the body", raised from the parser's exception, when
    # JSON fails for a reason other than syntax; to a client that is one more invalid request.
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
        return _error(422, _unparsable(exc.__cause__))
    if exc.status_code == 405:
        return _error(405, str(exc.detail), {**(exc.headers or {}), "Allow": _allowed(request)})
    return _error(exc.status_code, str(exc.detail), exc.headers)


def _allowed(request: Request) -> str:
    """Every method the path takes, as the published description lists them. Starlette's 405
    names the methods of the first route on the path only, and a path such as /v1/collections
    has a route per method."""
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        if _template_regex(template).fullmatch(request.scope["path"]):
            methods |= {method.upper() for method in operations}
    return ", ".join(sorted(methods))


@functools.cache
def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]*\})", template)
    return re.compile(
        "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error(500, "internal error; the server log has the details")


def _unparsable(cause: ValueError | RecursionError) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return f"the request body is not valid {cause.encoding.upper()} (byte {cause.start})"
    if isinstance(cause, RecursionError):
        return "the request body nests arrays or objects too deeply"
    # For instance "Exceeds the limit (4300 digits) for integer string conversion"; what follows
    # the semicolon is advice for the server's programmer.
    return f"the request body is not valid JSON: {str(cause).split(';')[0]}"
