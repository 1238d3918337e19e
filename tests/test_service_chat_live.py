"""The OpenAI-compatible API of the real service: `chancery serve` (real model, its own process)
over the reference report, asked through the official `openai` client as a chat tool would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import REFERENCE_PDF
from tests.served import served_data_root

STARTUP_SECONDS = 180
REQUEST_SECONDS = 120
"""Generous, so that a busy machine cannot fail a test; no test measures time."""
GAS = "Who is Serbia's primary supplier of natural gas?"
GAS_PAGE = 13


@pytest.fixture(scope="module")
def base_url(reference_pdf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("chat-live")
    with served_data_root([reference_pdf], root, startup_seconds=STARTUP_SECONDS) as url:
        yield url


def _client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{base_url}/v1", api_key="anything", max_retries=0, timeout=REQUEST_SECONDS
    )


def _verified(base_url: str, content: str, citations: list[dict[str, Any]]) -> None:
    for citation in citations:
        page = httpx.get(
            f"{base_url}/v1/documents/{citation['doc_id']}/pages/{citation['page']}",
            timeout=REQUEST_SECONDS,
        ).json()
        assert page["text"][citation["quote_start"] : citation["quote_end"]] == citation["quote"]
        assert content[citation["answer_start"] : citation["answer_end"]].strip()


def test_the_openai_client_gets_the_cited_page(base_url: str) -> None:
    response = _client(base_url).chat.completions.create(
        model="chancery", messages=[{"role": "user", "content": GAS}]
    )
    message = response.choices[0].message
    assert message.model_extra is not None
    citations = message.model_extra["citations"]
    assert (REFERENCE_PDF, GAS_PAGE) in [(c["doc"], c["page"]) for c in citations]
    _verified(base_url, message.content or "", citations)
    assert "Sources:" in (message.content or "")


def test_a_streamed_follow_up_searches_with_the_earlier_subject(base_url: str) -> None:
    chat = _client(base_url)
    first = chat.chat.completions.create(
        model="chancery", messages=[{"role": "user", "content": GAS}]
    )
    stream = chat.chat.completions.create(
        model="chancery",
        stream=True,
        messages=[
            {"role": "user", "content": GAS},
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": "How dependent is it on that supplier?"},
        ],
    )
    chunks = list(stream)
    last = chunks[-1]
    assert last.model_extra is not None
    details = last.model_extra["chancery"]
    assert details["rewritten_by"] == "rules" and "Serbia" in details["question"]
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    _verified(base_url, content, last.model_extra["citations"])
