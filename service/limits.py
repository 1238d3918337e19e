"""A cap on the size of request bodies, enforced before the application reads them.

FastAPI's own `max_body_size` runs the route first when the route does not read the body, and
then answers in plain text; this one answers a declared length at once, in the service's JSON.
Routes that take files (uploads) are allowed a larger body by an `Allowance`; the route itself
enforces its finer limits (per file, per request) as it reads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_CLOSE = {"Connection": "close"}
"""The rest of the body stays unread, so the connection cannot carry another request."""


class BodyTooLarge(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(status_code=413, detail=detail, headers=_CLOSE)


@dataclass(frozen=True)
class Allowance:
    """Requests of `method` to a path `path` matches whole may have bodies of `max_bytes`."""

    method: str
    path: re.Pattern[str]
    max_bytes: int


class BodyLimit:
    """Answer 413 to a request whose body is over `max_bytes`.

    A declared Content-Length over the limit is refused before the application runs. Any other
    body (a chunked one has no length) is counted as the application receives it, and refused by
    raising `BodyTooLarge` from `receive` once the count passes the limit, so no more than the
    limit is ever handed over. FastAPI lets an HTTPException from reading the body reach its
    handlers, so that answer has the application's error format.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, allowances: Sequence[Allowance] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.allowances = tuple(allowances)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        declared = _content_length(scope)
        if declared is not None and _exceeds(declared, limit):
            detail = f"the request body has {declared} bytes; the limit is {limit}"
            response = JSONResponse({"detail": detail}, status_code=413, headers=_CLOSE)
            await response(scope, receive, send)
            return

        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(f"the request body is over the limit of {limit} bytes")
            return message

        await self.app(scope, counted, send)

    def _limit(self, scope: Scope) -> int:
        for allowance in self.allowances:
            if scope["method"] == allowance.method and allowance.path.fullmatch(scope["path"]):
                return allowance.max_bytes
        return self.max_bytes


def _content_length(scope: Scope) -> str | None:
    value = Headers(scope=scope).get("content-length")
    # The server has already refused a malformed length; a missing one means a chunked body.
    if value is None or not (value.isascii() and value.isdigit()):
        return None
    return value.lstrip("0") or "0"


def _exceeds(digits: str, limit: int) -> bool:
    # Compare lengths first: Python refuses to convert more than 4,300 digits.
    return len(digits) > len(str(limit)) or int(digits) > limit
