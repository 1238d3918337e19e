"""Shared fixtures: the reference corpus, the sample documents and small tokenizers."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

# The server answers loopback host names only, by default; Starlette's test client calls itself
# "testserver". Every app the tests build (and every server they start) reads this.
os.environ.setdefault("CHANCERY_TRUSTED_HOSTS", '["127.0.0.1", "localhost", "[::1]", "testserver"]')
# Load tests and fuzzing send far more than a person would; tests of the limit set their own.
os.environ.setdefault("CHANCERY_RATE_LIMIT_RPS", "100000")
os.environ.setdefault("CHANCERY_RATE_LIMIT_BURST", "100000")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"
FINANCEBENCH = SHARED / "financebench-dev"
SAMPLES = REPO / "samples"
REFERENCE_PDF = "kcss-serbia-security-doctrine.pdf"


def _need(path: Path) -> Path:
    if path.exists():
        return path
    message = f"{path} is missing"
    if os.environ.get("CI"):
        share = path.relative_to(SHARED).parts[0]
        pytest.fail(f"{message}; CI must have ../shared/{share} beside the repository")
    pytest.skip(message)


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    return _need(CORPUS)


CORPUS_FILES = ("kcss-serbia-security-doctrine.pdf", "kcss-report-news.txt")
"""The corpus proper; the README beside them describes it and is not part of it."""


@pytest.fixture(scope="session")
def corpus_files(corpus_dir: Path) -> list[Path]:
    return [_need(corpus_dir / name) for name in CORPUS_FILES]


@pytest.fixture(scope="session")
def reference_pdf(corpus_dir: Path) -> Path:
    return _need(corpus_dir / REFERENCE_PDF)


@pytest.fixture(scope="session")
def financebench_dir() -> Path:
    """Twelve real SEC filings (pdfs/) and FinanceBench's questions on them (questions.jsonl)."""
    return _need(FINANCEBENCH)


class WhitespaceTokenizer:
    """A stand-in tokenizer for fast tests: every run of non-space characters is a token."""

    _TOKEN = re.compile(r"\S+")

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return [[m.span() for m in self._TOKEN.finditer(text)] for text in texts]

    def count(self, text: str) -> int:
        return len(self._TOKEN.findall(text))


@pytest.fixture(scope="session")
def whitespace_tokenizer() -> WhitespaceTokenizer:
    return WhitespaceTokenizer()


@pytest.fixture(scope="session")
def model_tokenizer():  # type: ignore[no-untyped-def]
    from index.model_files import bundled_model_dir
    from index.tokenizer import ModelTokenizer

    return ModelTokenizer.from_model_dir(bundled_model_dir())


# The scripted LLM server (tests/llm_stub.py) is imported only when a test asks for it, so
# that collecting the suite does not load uvicorn.
from collections.abc import Iterator  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:
    from tests.llm_stub import ScriptedLLM


@pytest.fixture(scope="session")
def _scripted_llm_server() -> Iterator[ScriptedLLM]:
    from tests.llm_stub import ScriptedLLM

    with ScriptedLLM() as server:
        yield server


@pytest.fixture
def scripted_llm(_scripted_llm_server: ScriptedLLM) -> ScriptedLLM:
    """The session's scripted OpenAI-compatible server (`tests/llm_stub.py`), reset to the
    default script with nothing recorded; one server for the session, because starting one
    costs more than most tests that use it."""
    _scripted_llm_server.reset()
    return _scripted_llm_server
