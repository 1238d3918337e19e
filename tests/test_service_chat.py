"""The OpenAI-compatible API, driven by the official `openai` client against the real app.

The app runs under uvicorn in a thread (tests/served.py's `Served`), with the
fake embedder over a data root of two small collections, so every exchange goes over real HTTP
through the client's own parsing: what the client keeps of the citations is what a chat tool
built on it gets. The LLM, where one is configured, is the scripted server of tests/llm_stub.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from index.store import Index
from service.build import build_app
from service.settings import Settings
from tests.answerer_contract import FILES, UNANSWERABLE
from tests.fakes import FakeEmbedder, build_index
from tests.llm_stub import ChatRequest, Reply, ScriptedLLM, good_answer, server_error
from tests.served import Served
from tests.test_service_generative import cite

BORDER = "How many border crossings does Astoria have with Northland?"
ARMY = "What does Serbia's strategy say about the army?"
BUDGET = "And what about the defence budget?"
"""Followed by ARMY: the fake embedder needs the word "defence" to find the budget."""
SERBIA = {
    "strategy.txt": "Defence\n\n"
    "Serbia's strategy says the army must be modern and ready to defend the country. "
    "The army of Serbia recruits volunteers only since 2011.\f"
    "Budget\n\n"
    "The defence budget of Serbia grows by a tenth every year. "
    "Kosovo keeps a smaller budget for its security force, which grows more slowly.",
}
TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`default` holds the answerer contract's files, `serbia` a strategy of its own."""
    root = tmp_path_factory.mktemp("chat-data")
    for name, files in (("default", FILES), ("serbia", SERBIA)):
        index: Index = build_index(root / "collections" / name / "index", files, FakeEmbedder())
        index.close()
    return root


Servers = Callable[..., str]


@pytest.fixture(scope="module")
def servers(data_root: Path, _scripted_llm_server: ScriptedLLM) -> Iterator[Servers]:
    """The base URL of an app per set of settings (`llm=True`: the scripted LLM configured),
    each kept for the module."""
    running: dict[tuple[tuple[str, Any], ...], tuple[Served, str]] = {}

    def served(llm: bool = False, **overrides: Any) -> str:
        key = (("llm", llm), *sorted(overrides.items()))
        if key not in running:
            llm_settings: dict[str, Any] = (
                {
                    "llm_base_url": _scripted_llm_server.base_url,
                    "llm_model": "stub",
                    "llm_timeout_s": TIMEOUT_S,
                }
                if llm
                else {}
            )
            settings = Settings(
                data_dir=data_root,
                abstain_min_similarity=0.4,  # the fake embedder's cosines run low
                **{**llm_settings, **overrides},
            )
            server = Served(build_app(settings, embedder=FakeEmbedder(), data_root=True))
            running[key] = (server, server.__enter__())
        return running[key][1]

    yield served
    for server, _ in running.values():
        server.__exit__(None, None, None)


def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="anything", max_retries=0)


def extra(model: Any, name: str) -> Any:
    """An extra field the client kept on one of its models."""
    assert model.model_extra is not None and name in model.model_extra, model
    return model.model_extra[name]


def assert_citations_verified(base_url: str, content: str, citations: list[dict[str, Any]]) -> None:
    """Each quote stands on its page at its offsets (read back from the page route), marks the
    sentence of the content it supports, and links to the web page's view of that page."""
    assert citations
    with httpx.Client(base_url=base_url) as http:
        for citation in citations:
            collection = "default"
            if "collection=" in citation["url"]:
                collection = httpx.URL(citation["url"]).params["collection"]
            prefix = "/v1" if collection == "default" else f"/v1/collections/{collection}"
            page = http.get(f"{prefix}/documents/{citation['doc_id']}/pages/{citation['page']}")
            assert page.status_code == 200, page.text
            text = page.json()["text"]
            assert text[citation["quote_start"] : citation["quote_end"]] == citation["quote"]
            sentence = content[citation["answer_start"] : citation["answer_end"]]
            assert sentence and "[" not in sentence
            assert content[citation["answer_end"] :].startswith(f" [{citation['n']}]") or content[
                citation["answer_end"] :
            ].lstrip().startswith("[")
            link = httpx.URL(citation["url"])
            assert str(link).startswith(base_url)
            assert link.path == f"/documents/{citation['doc_id']}/pages/{citation['page']}"
            assert link.params["quote"] == citation["quote"]
            assert int(link.params["start"]) == citation["quote_start"]
            assert http.get(citation["url"]).status_code == 200  # the web page's deep link


# -- answers ----------------------------------------------------------------------------------


def test_models_lists_one_model_per_collection(servers: Servers) -> None:
    models = client(servers()).models.list()
    assert [m.id for m in models.data] == ["chancery", "chancery/serbia"]
    assert {m.owned_by for m in models.data} == {"chancery"}


def test_an_answer_keeps_its_citations_in_the_clients_extra_fields(servers: Servers) -> None:
    base_url = servers()
    response = client(base_url).chat.completions.create(
        model="chancery", messages=[{"role": "user", "content": BORDER}]
    )
    message = response.choices[0].message
    content = message.content or ""
    citations = extra(message, "citations")
    assert extra(response, "citations") == citations
    assert "Astoria has four border crossings with Northland. [1]" in content
    assert_citations_verified(base_url, content, citations)
    # The content reads well without them: the sources are listed at its end.
    assert "\n\nSources:\n- [1] " in content and "page 1" in content
    assert response.choices[0].finish_reason == "stop"
    details = extra(response, "chancery")
    assert details["question"] == BORDER and details["rewritten_by"] == "none"
    assert details["collection"] == "default" and not details["abstained"]
    assert response.system_fingerprint == details["index_version"]
    usage = response.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert details["usage"] == "estimate"


def test_the_model_picks_the_collection(servers: Servers) -> None:
    base_url = servers()
    response = client(base_url).chat.completions.create(
        model="chancery/serbia", messages=[{"role": "user", "content": ARMY}]
    )
    citations = extra(response.choices[0].message, "citations")
    assert {c["doc"] for c in citations} == {"strategy.txt"}
    assert all("collection=serbia" in c["url"] for c in citations)
    assert extra(response, "chancery")["collection"] == "serbia"
    assert_citations_verified(base_url, response.choices[0].message.content or "", citations)


def test_the_sources_list_can_be_switched_off(servers: Servers) -> None:
    chat = client(servers())
    plain = chat.chat.completions.create(
        model="chancery",
        messages=[{"role": "user", "content": BORDER}],
        extra_body={"sources": False},
    )
    listed = chat.chat.completions.create(
        model="chancery", messages=[{"role": "user", "content": BORDER}]
    )
    assert "Sources:" not in (plain.choices[0].message.content or "")
    assert (listed.choices[0].message.content or "").startswith(
        plain.choices[0].message.content or "-"
    )
    assert extra(plain.choices[0].message, "citations") == extra(
        listed.choices[0].message, "citations"
    )


def test_an_abstention_lists_the_closest_passages(servers: Servers) -> None:
    chat = client(servers())
    question = UNANSWERABLE[0]
    response = chat.chat.completions.create(
        model="chancery", messages=[{"role": "user", "content": question}]
    )
    content = response.choices[0].message.content or ""
    assert extra(response, "chancery")["abstained"]
    assert extra(response.choices[0].message, "citations") == []
    message, passages = content.split("\n\nClosest passages:\n")
    assert message and "[" not in message
    assert passages.startswith("- ") and ", page " in passages
    plain = chat.chat.completions.create(
        model="chancery",
        messages=[{"role": "user", "content": question}],
        extra_body={"sources": False},
    )
    assert plain.choices[0].message.content == message


def test_system_messages_are_accepted_and_do_not_change_the_answer(servers: Servers) -> None:
    chat = client(servers())
    asked = chat.chat.completions.create(
        model="chancery", messages=[{"role": "user", "content": BORDER}]
    )
    instructed = chat.chat.completions.create(
        model="chancery",
        messages=[
            {"role": "system", "content": "You are a helpful assistant. Answer in French."},
            {"role": "user", "content": [{"type": "text", "text": BORDER}]},
        ],
    )
    assert instructed.choices[0].message.content == asked.choices[0].message.content


# -- streaming --------------------------------------------------------------------------------


def test_a_stream_sends_each_sentence_with_its_citations_then_all_of_them(
    servers: Servers,
) -> None:
    base_url = servers()
    chat = client(base_url)
    messages: Any = [{"role": "user", "content": BORDER}]
    whole = chat.chat.completions.create(model="chancery", messages=messages)
    chunks = list(
        chat.chat.completions.create(
            model="chancery",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    with_choices = [c for c in chunks if c.choices]
    content = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert content == whole.choices[0].message.content
    sentences = [c for c in with_choices[1:-1] if c.choices[0].delta.content]
    assert sentences, "each verified sentence arrives in a chunk of its own"
    for chunk in sentences:
        cited = extra(chunk.choices[0].delta, "citations")
        piece = chunk.choices[0].delta.content or ""
        assert cited and all(c["quote"] in piece or f"[{c['n']}]" in piece for c in cited)
    last = with_choices[-1]
    assert last.choices[0].finish_reason == "stop"
    everything = extra(whole.choices[0].message, "citations")
    assert extra(last.choices[0].delta, "citations") == everything
    assert extra(last, "citations") == everything
    assert extra(last, "chancery") == extra(whole, "chancery")
    # As OpenAI sends it: usage in a chunk of its own, with no choices, last.
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    assert_citations_verified(base_url, content, everything)
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].id.startswith("chatcmpl-")


def test_the_async_client_answers_plain_and_streamed(servers: Servers) -> None:
    import asyncio

    base_url = servers()

    async def both() -> tuple[Any, list[Any]]:
        async with openai.AsyncOpenAI(
            base_url=f"{base_url}/v1", api_key="anything", max_retries=0
        ) as chat:
            messages: Any = [{"role": "user", "content": BORDER}]
            whole = await chat.chat.completions.create(model="chancery", messages=messages)
            stream = await chat.chat.completions.create(
                model="chancery", messages=messages, stream=True
            )
            return whole, [chunk async for chunk in stream]

    whole, chunks = asyncio.run(both())
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == whole.choices[0].message.content
    assert extra(whole.choices[0].message, "citations")
    assert extra(chunks[-1], "citations") == extra(whole, "citations")


# -- conversations ----------------------------------------------------------------------------


def _conversation(chat: openai.OpenAI, *, follow_up: str = BUDGET, **body: Any) -> Any:
    first = chat.chat.completions.create(
        model="chancery/serbia", messages=[{"role": "user", "content": ARMY}]
    )
    return chat.chat.completions.create(
        model="chancery/serbia",
        messages=[
            {"role": "user", "content": ARMY},
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": follow_up},
        ],
        **body,
    )


def test_a_follow_up_is_searched_with_the_earlier_turns_subject(servers: Servers) -> None:
    response = _conversation(client(servers()))
    details = extra(response, "chancery")
    assert details["rewritten_by"] == "rules"
    assert details["question"] == f"{BUDGET} (Serbia, army)"
    quotes = [c["quote"] for c in extra(response.choices[0].message, "citations")]
    assert "The defence budget of Serbia grows by a tenth every year." in quotes
    assert not any("Kosovo" in quote for quote in quotes)


def test_with_an_llm_the_follow_up_is_rewritten_by_it(
    servers: Servers, scripted_llm: ScriptedLLM
) -> None:
    standalone = "What is the defence budget of Serbia?"

    def script(request: ChatRequest) -> Reply:
        if request.question() is None:  # the rewrite: no passages, no <question>
            return Reply(text=f"{standalone}\n")
        return good_answer(request)

    scripted_llm.script = script
    response = _conversation(client(servers(llm=True)))
    details = extra(response, "chancery")
    assert (details["rewritten_by"], details["question"]) == ("llm", standalone)
    rewrite = scripted_llm.requests[0]
    assert rewrite.body["temperature"] == 0 and ARMY in rewrite.user_text()
    assert BUDGET in rewrite.user_text()
    assert len(scripted_llm.requests) == 1  # the extractive answer asked the LLM nothing more


def test_when_the_rewrite_fails_the_rules_stand_in(
    servers: Servers, scripted_llm: ScriptedLLM
) -> None:
    scripted_llm.script = server_error
    response = _conversation(client(servers(llm=True)))
    details = extra(response, "chancery")
    assert (details["rewritten_by"], details["question"]) == ("rules", f"{BUDGET} (Serbia, army)")
    assert len(scripted_llm.requests) == 1


# -- the LLM's parameters and usage -----------------------------------------------------------


def test_temperature_and_max_tokens_reach_the_llm_and_its_usage_is_reported(
    servers: Servers, scripted_llm: ScriptedLLM
) -> None:
    def script(request: ChatRequest) -> Reply:
        answer = cite(
            "four border crossings", "Astoria has four border crossings with Northland [{n}]."
        )
        return Reply(text=answer(request).text, usage=(321, 12))

    scripted_llm.script = script
    response = client(servers(llm=True)).chat.completions.create(
        model="chancery",
        messages=[{"role": "user", "content": BORDER}],
        temperature=0.7,
        max_tokens=200,
        extra_body={"answerer": "generative"},
    )
    details = extra(response, "chancery")
    assert details["answerer"] == "generative" and details["usage"] == "llm"
    sent = scripted_llm.requests[-1].body
    assert (sent["temperature"], sent["max_tokens"]) == (0.7, 200)
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (321, 12)
    # The service's own settings are back for the next request.
    client(servers(llm=True)).chat.completions.create(
        model="chancery",
        messages=[{"role": "user", "content": BORDER}],
        extra_body={"answerer": "generative"},
    )
    sent = scripted_llm.requests[-1].body
    assert (sent["temperature"], sent["max_tokens"]) == (0, Settings().llm_max_tokens)


def test_a_client_that_leaves_mid_stream_stops_the_llm(
    servers: Servers, _scripted_llm_server: ScriptedLLM
) -> None:
    llm = _scripted_llm_server
    llm.reset()
    sentence = "Astoria has four border crossings with Northland [{n}]. "
    llm.script = cite("four border crossings", sentence * 40, chunk_chars=8, chunk_delay_s=0.05)
    stream = client(servers(llm=True)).chat.completions.create(
        model="chancery",
        messages=[{"role": "user", "content": BORDER}],
        stream=True,
        extra_body={"answerer": "generative"},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break  # one verified sentence is enough; the rest would take 20 s
    stream.close()
    waited = threading.Event()
    for _ in range(200):
        if llm.closed_early() == 1:
            break
        waited.wait(0.05)
    assert llm.closed_early() == 1


# -- errors -----------------------------------------------------------------------------------

USER: Any = [{"role": "user", "content": BORDER}]
REFUSED: dict[str, tuple[dict[str, Any], str, str]] = {
    "tools": (
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
        "tools",
        "calls no tools",
    ),
    "two-choices": ({"n": 2}, "n", "n must be 1"),
    "logprobs": ({"logprobs": True}, "logprobs", "logprobs are not offered"),
    "json-format": (
        {"response_format": {"type": "json_object"}},
        "response_format",
        "can only be text",
    ),
    "image": (
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in this picture?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                    ],
                }
            ]
        },
        "messages[0].content[1]",
        "only text content is supported",
    ),
    "tool-message": (
        {"messages": [*USER, {"role": "tool", "content": "42", "tool_call_id": "x"}]},
        "messages[1]",
        "no tools are offered",
    ),
}


@pytest.mark.parametrize("case", REFUSED)
def test_what_chancery_cannot_do_is_a_400_the_client_raises(servers: Servers, case: str) -> None:
    body, param, says = REFUSED[case]
    request: dict[str, Any] = {"model": "chancery", "messages": USER, **body}
    with pytest.raises(openai.BadRequestError) as raised:
        client(servers()).chat.completions.create(**request)
    error = raised.value
    assert error.status_code == 400 and says in error.message
    assert error.param == param and error.code == "unsupported_parameter"
    assert error.type == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": "hello"}, "messages"),
        ({"messages": []}, "messages"),
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": 3}, "temperature"),
        ({"stream": "yes"}, "stream"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "assistant", "content": "Hello."}]}, "messages"),
        ({"messages": [{"role": "user", "content": "x" * 2001}]}, "messages[0].content"),
        ({"answerer": "poetic"}, "answerer"),
    ],
)
def test_invalid_requests_are_a_400_in_openais_envelope(
    servers: Servers, body: dict[str, Any], param: str
) -> None:
    request: dict[str, Any] = {"model": "chancery", "messages": USER, **body}
    response = httpx.post(f"{servers()}/v1/chat/completions", json=request)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["message"].strip(), error
    assert error["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError):
        # The client sends what `extra_body` holds over its own fields.
        client(servers()).chat.completions.create(model="chancery", messages=USER, extra_body=body)


def test_other_routes_keep_chanceries_own_errors(servers: Servers) -> None:
    response = httpx.post(f"{servers()}/v1/ask", json={"question": ""})
    assert response.status_code == 422 and "detail" in response.json()


@pytest.mark.parametrize("model", ["gpt-4o", "chancery/nope", "chancery/", "chancery/Bad Name"])
def test_an_unknown_model_is_a_404_the_client_raises(servers: Servers, model: str) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        client(servers()).chat.completions.create(model=model, messages=USER)
    assert raised.value.code == "model_not_found" and raised.value.param == "model"
    assert "GET /v1/models" in raised.value.message


def test_a_generative_answer_without_an_llm_is_a_400(servers: Servers) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client(servers()).chat.completions.create(
            model="chancery", messages=USER, extra_body={"answerer": "generative"}
        )
    assert "CHANCERY_LLM_BASE_URL" in raised.value.message
