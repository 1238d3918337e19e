"""Request ids: one per request, on the response, in the logs, in the audit.

`RequestId` (pure ASGI, so streamed responses keep flowing) takes the client's `X-Request-ID`
when it is well-formed (1 to 128 characters of letters, digits and `-_.:`: UUIDs, ULIDs, trace
ids), so a caller's id follows the request through its logs and ours; anything else (too long,
spaces, control characters that could forge log lines) is replaced by a fresh id. The id is set
on the response header, in `scope["state"]` (`request.state.request_id`), and in a contextvar
that `RequestIdFilter` copies into every log record written while the request runs.

`configure_logging` writes one JSON object per line when stderr is not a terminal (a log
collector reads them), and readable lines when it is. The JSON formatter is a few lines of
`json.dumps`, not python-json-logger: it needs no options, and one fewer dependency is one fewer
thing to audit in a ministry's deployment.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
from datetime import UTC, datetime
from typing import IO, Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
NO_REQUEST = "-"
"""The request id of log records written outside any request."""
_WELL_FORMED = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ID_BYTES = 16

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "chancery_request_id", default=None
)


def current_request_id() -> str | None:
    return request_id_var.get()


def new_request_id() -> str:
    return secrets.token_hex(_ID_BYTES)


def accepted_request_id(sent: str | None) -> str:
    """The client's id when it is well-formed, else a new one."""
    if sent is not None and _WELL_FORMED.fullmatch(sent):
        return sent
    return new_request_id()


class RequestId:
    """Pure-ASGI middleware giving each HTTP request an id. Install it outermost, so every
    response (a 400 from the Host check, a 429) carries one and every log line has it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = accepted_request_id(Headers(scope=scope).get(HEADER))
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        token = request_id_var.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record (NO_REQUEST outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or NO_REQUEST
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request_id, and
    the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def configure_logging(
    level: int | str = logging.INFO,
    *,
    stream: IO[str] | None = None,
    json_lines: bool | None = None,
) -> logging.Handler:
    """Send every logger's records (uvicorn's included: run it with `log_config=None`) to
    `stream`, as JSON lines when `json_lines` is true or, unset, when the stream is not a
    terminal. Replaces the handlers of the root logger; returns the one installed."""
    stream = stream if stream is not None else sys.stderr
    if json_lines is None:
        json_lines = not stream.isatty()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
