"""Errors become an HTTP status and a CLI exit code in one place each, through one translation."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
from fastapi.testclient import TestClient

from index.model_files import ModelError
from index.store import StoreError, UnknownDocumentError
from index.update import DocumentIdConflictError, LegacyDocumentIdsError
from ingest.raw import LoadError
from service.app import create_app
from service.cli import run
from service.engine import DEFAULT_COLLECTION, Engine
from service.errors import (
    ChanceryError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    UnavailableError,
    translate,
)
from service.library import BareIndex
from service.settings import Settings
from tests.conftest import SAMPLES


class TeapotError(ChanceryError):
    status = 418
    exit_code = 3


ERRORS: list[tuple[Exception, type[ChanceryError], int, int]] = [
    (NotFoundError("boom"), NotFoundError, 404, 1),
    (InvalidRequestError("boom"), InvalidRequestError, 422, 1),
    (ConflictError("boom"), ConflictError, 409, 1),
    (UnavailableError("boom"), UnavailableError, 503, 1),
    (TeapotError("boom"), TeapotError, 418, 3),
    (UnknownDocumentError("boom"), NotFoundError, 404, 1),
    (DocumentIdConflictError("boom"), ConflictError, 409, 1),
    (LegacyDocumentIdsError("boom"), ConflictError, 409, 1),
    (StoreError("boom"), UnavailableError, 503, 1),
    (ModelError("boom"), UnavailableError, 503, 1),
    (LoadError("boom"), InvalidRequestError, 422, 1),
]
"""Each error, what it translates to, its HTTP status and its exit code."""


@pytest.mark.parametrize(("error", "kind", "status", "exit_code"), ERRORS)
def test_translate_keeps_the_message_and_the_cause(
    error: Exception, kind: type[ChanceryError], status: int, exit_code: int
) -> None:
    translated = translate(error)
    assert type(translated) is kind
    assert (translated.status, translated.exit_code) == (status, exit_code)
    assert str(translated) == "boom"
    if not isinstance(error, ChanceryError):
        assert translated.__cause__ is error


def test_a_bug_is_not_translated() -> None:
    assert translate(RuntimeError("boom")) is None
    assert translate(KeyError("boom")) is None


class FailingEngine:
    """Stands in for the engine: every answer raises `error`."""

    collection = DEFAULT_COLLECTION

    def __init__(self, error: Exception) -> None:
        self.error = error

    def ask(self, question: str, k: int, docs: list[str] | None, answerer: str | None) -> None:
        raise self.error


def _client(error: Exception) -> TestClient:
    engine = cast(Engine, FailingEngine(error))
    app = create_app(Settings(index_dir=Path("unused")), lambda: BareIndex(engine))
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(("error", "kind", "status", "exit_code"), ERRORS)
def test_the_http_edge_answers_the_status_with_the_message(
    error: Exception, kind: type[ChanceryError], status: int, exit_code: int
) -> None:
    with _client(error) as client:
        response = client.post("/v1/ask", json={"question": "Who?"})
    assert response.status_code == status
    assert response.json() == {"detail": "boom"}


def test_the_http_edge_hides_a_bug_behind_a_500(caplog: pytest.LogCaptureFixture) -> None:
    with _client(RuntimeError("secret detail")) as client:
        response = client.post("/v1/ask", json={"question": "Who?"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; the server log has the details"}
    assert "secret detail" in caplog.text  # in the log, not in the response


def _fail_with(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def broken(*_: object) -> None:
        raise error

    monkeypatch.setattr("service.build.build_chunking", broken)


INSPECT = ["inspect", str(SAMPLES / "northland-energy-brief.md"), "--chunks"]


@pytest.mark.parametrize(("error", "kind", "status", "exit_code"), ERRORS)
def test_the_cli_edge_prints_one_sentence_and_exits_with_the_code(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: Exception,
    kind: type[ChanceryError],
    status: int,
    exit_code: int,
) -> None:
    _fail_with(monkeypatch, error)
    assert run(INSPECT) == exit_code
    assert capsys.readouterr().err == "chancery: boom\n"


def test_the_cli_edge_reports_a_bug_as_an_internal_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fail_with(monkeypatch, RuntimeError("boom"))
    assert run(INSPECT) == 2
    assert capsys.readouterr().err == "chancery: internal error: RuntimeError: boom\n"


def test_the_cli_edge_translates_errors_the_lower_layers_raise_themselves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["search", "NATO", "--index", str(tmp_path)]) == 1
    assert "holds no index" in capsys.readouterr().err
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7 broken")
    assert run(["inspect", str(broken)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"chancery: cannot read {broken}: ") and err.count("\n") == 1
