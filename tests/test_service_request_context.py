"""Request ids: honoured when well-formed, replaced otherwise, on the response and in every log
line written while the request runs; JSON log lines off a terminal."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from service.request_context import (
    HEADER,
    NO_REQUEST,
    JsonFormatter,
    RequestId,
    RequestIdFilter,
    accepted_request_id,
    configure_logging,
    current_request_id,
)

log = logging.getLogger("chancery.test.request_context")


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield stream
    log.removeHandler(handler)


def app() -> TestClient:
    served = FastAPI()

    @served.get("/async")
    async def in_async(request: Request) -> dict[str, str | None]:
        log.info("asked")
        return {"var": current_request_id(), "state": request.state.request_id}

    @served.get("/sync")
    def in_thread() -> dict[str, str | None]:
        log.info("asked in a worker thread")
        return {"var": current_request_id()}

    @served.get("/stream")
    def stream() -> StreamingResponse:
        return StreamingResponse(iter([b"a", b"b"]))

    served.add_middleware(RequestId)
    return TestClient(served)


def test_a_well_formed_id_is_honoured_everywhere(lines: io.StringIO) -> None:
    sent = "3f2b9c1e-7a4d-4e0b-9d3a-6f1c2b8e5a70"
    response = app().get("/async", headers={HEADER: sent})
    assert response.headers[HEADER] == sent
    assert response.json() == {"var": sent, "state": sent}
    (line,) = lines.getvalue().splitlines()
    assert json.loads(line)["request_id"] == sent


def test_sync_routes_in_worker_threads_see_the_id(lines: io.StringIO) -> None:
    response = app().get("/sync")
    assigned = response.headers[HEADER]
    assert response.json() == {"var": assigned}
    assert json.loads(lines.getvalue())["request_id"] == assigned


@pytest.mark.parametrize("sent", ["", "has space", "x" * 129, "line\nbreak", "ünïcode", "a;b"])
def test_malformed_ids_are_replaced(sent: str) -> None:
    assert accepted_request_id(sent) != sent
    assert len(accepted_request_id(sent)) == 32


def test_each_request_without_an_id_gets_a_new_one() -> None:
    test = app()
    first, second = (test.get("/stream") for _ in range(2))
    assert first.text == "ab"
    assert first.headers[HEADER] != second.headers[HEADER]
    assert current_request_id() is None  # nothing leaks out of the request


def test_records_outside_a_request_say_so(lines: io.StringIO) -> None:
    log.warning("starting")
    assert json.loads(lines.getvalue())["request_id"] == NO_REQUEST


def test_json_lines_carry_the_exception() -> None:
    formatter = JsonFormatter()
    try:
        raise ValueError("broken")
    except ValueError:
        record = log.makeRecord(log.name, logging.ERROR, __file__, 1, "failed %s", ("x",), None)
        record.exc_info = sys.exc_info()
    line = json.loads(formatter.format(record))
    assert line["message"] == "failed x"
    assert line["level"] == "ERROR"
    assert "ValueError: broken" in line["exception"]
    assert line["time"].endswith("+00:00")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_configure_logging_picks_json_off_a_terminal() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        piped = io.StringIO()
        configure_logging(stream=piped)
        logging.getLogger("chancery").info("to a file")
        assert json.loads(piped.getvalue())["message"] == "to a file"
        terminal = Terminal()
        configure_logging(stream=terminal)
        logging.getLogger("chancery").info("to a person")
        assert terminal.getvalue().rstrip().endswith(f"INFO chancery [{NO_REQUEST}] to a person")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
