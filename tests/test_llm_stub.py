"""The scripted LLM server, through the real clients the generative answerer uses: the `openai`
client and LangChain's ChatOpenAI, plain and streaming, and what each raises when the server
fails in the ways `tests/llm_stub.py` can script."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import BaseMessage
from langchain_openai import ChatOpenAI
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from openai.types.chat.completion_create_params import ResponseFormat

from tests.llm_stub import (
    DONT_KNOW,
    NOT_IN_PASSAGES,
    ChatRequest,
    Reply,
    ScriptedLLM,
    cut_mid_sentence,
    first_sentence,
    fixed,
    garbage,
    good_answer,
    not_in_passages,
    server_error,
    slow,
)

PASSAGES = {
    1: (
        "Strategy & Plans",
        3,
        "The Council coordinates the strategy. It reports to the Landsting\neach year.",
    ),
    2: (
        "Energy > Gas",
        7,
        "The terminal receives 5.5 billion cubic metres a year. It opened in 2024.",
    ),
}
QUESTION = "Who coordinates the strategy?"
GOOD = (
    "The Council coordinates the strategy. [1] "
    "The terminal receives 5.5 billion cubic metres a year. [2]"
)
PATIENT_S = 30.0
"""Client timeout where the test does not exercise one: generous, so a busy machine passes."""
DEADLINE_S = 10.0


def prompt(passages: dict[int, tuple[str, int, str]] = PASSAGES, question: str = QUESTION) -> str:
    blocks = [
        f'<passage n="{n}" title="{title}" page="{page}">\n{text}\n</passage>'
        for n, (title, page, text) in passages.items()
    ]
    return "\n".join([*blocks, f"<question>{question}</question>"])


def messages() -> list[ChatCompletionMessageParam]:
    return [
        {"role": "system", "content": "Answer from the passages only."},
        {"role": "user", "content": prompt()},
    ]


def chat_request(content: Any, stream: bool = False) -> ChatRequest:
    sent: list[dict[str, Any]] = [{"role": "user", "content": content}]
    body = {"model": "stub", "messages": sent, "stream": stream}
    return ChatRequest(model="stub", messages=sent, stream=stream, body=body)


def openai_client(llm: ScriptedLLM, timeout: float = PATIENT_S) -> openai.OpenAI:
    return openai.OpenAI(base_url=llm.base_url, api_key="x", max_retries=0, timeout=timeout)


def chat_model(llm: ScriptedLLM, timeout: float = PATIENT_S) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=llm.base_url, api_key="x", model="stub", max_retries=0, timeout=timeout
    )


def wait_for(condition: Callable[[], bool], seconds: float = DEADLINE_S) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# The prompt format and the ready-made scripts.


def test_passages_and_question_are_parsed_from_the_last_user_message() -> None:
    request = chat_request(prompt())
    assert request.passages() == {n: text for n, (_, _, text) in PASSAGES.items()}
    assert request.question() == QUESTION


def test_content_given_as_parts_is_parsed_too() -> None:
    request = chat_request([{"type": "text", "text": prompt()}])
    assert set(request.passages()) == {1, 2}
    assert request.question() == QUESTION


def test_a_prompt_without_the_tags_has_no_passages_and_no_question() -> None:
    request = chat_request("Just chatting.")
    assert request.passages() == {}
    assert request.question() is None


def test_first_sentence_ends_at_a_full_stop_and_white_space_or_at_the_end() -> None:
    assert first_sentence("One. Two.") == "One."
    assert first_sentence("It costs 5.5 crowns.\nMore.") == "It costs 5.5 crowns."
    assert first_sentence(" No full stop ") == "No full stop"
    assert first_sentence("2.1 Gas\nSummary\nThe terminal opened. It is big.") == (
        "The terminal opened."
    )
    assert first_sentence("A heading\n") == "A heading"


def test_good_answer_cites_the_first_sentence_of_passages_one_and_two() -> None:
    assert good_answer(chat_request(prompt())).text == GOOD
    only_one = prompt({1: PASSAGES[1]})
    assert good_answer(chat_request(only_one)).text == "The Council coordinates the strategy. [1]"
    assert good_answer(chat_request("no passages")).text == NOT_IN_PASSAGES


def test_the_other_scripts() -> None:
    request = chat_request(prompt())
    assert fixed("Hi.", usage=(3, 1))(request) == Reply(text="Hi.", usage=(3, 1))
    assert not_in_passages(request).text == NOT_IN_PASSAGES
    assert server_error(request).status == 500
    assert garbage(request).raw_body == b"{not json"
    assert slow(4.0)(request) == Reply(text=GOOD, delay_s=4.0)
    assert slow(1.0, then=not_in_passages)(request).text == NOT_IN_PASSAGES


def test_cut_mid_sentence_halves_the_good_answer() -> None:
    plain = cut_mid_sentence(chat_request(prompt()))
    assert plain.text == GOOD[: len(GOOD) // 2].replace(" [1]", "")
    assert "[" not in plain.text
    streamed = cut_mid_sentence(chat_request(prompt(), stream=True))
    assert streamed.text == GOOD
    assert streamed.cut_after_chunks == math.ceil(len(GOOD) / streamed.chunk_chars) // 2


# The openai client.


def test_openai_plain_completion(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.script = good_answer
    completion = openai_client(scripted_llm).chat.completions.create(
        model="stub", messages=messages(), max_tokens=200
    )
    assert completion.choices[0].message.content == GOOD
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "stub"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.completion_tokens > 0
    [request] = scripted_llm.requests
    assert (request.model, request.stream) == ("stub", False)
    assert request.body["max_tokens"] == 200
    assert request.question() == QUESTION


def test_openai_stream_sends_the_text_in_chunks_and_usage_last(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.script = good_answer
    chunks = list(
        openai_client(scripted_llm).chat.completions.create(
            model="stub",
            messages=messages(),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert "".join(pieces) == GOOD
    assert len(pieces) == math.ceil(len(GOOD) / Reply().chunk_chars)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0
    assert scripted_llm.requests[0].stream


def test_scripted_usage_and_finish_reason_are_reported(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.script = fixed("Cut", usage=(7, 3), finish_reason="length")
    completion = openai_client(scripted_llm).chat.completions.create(
        model="stub", messages=messages()
    )
    assert completion.usage is not None
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (7, 3, 10)
    assert completion.choices[0].finish_reason == "length"


@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_object"},
        {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
        },
    ],
)
def test_response_format_is_accepted_and_recorded(
    scripted_llm: ScriptedLLM, response_format: ResponseFormat
) -> None:
    scripted_llm.script = fixed('{"sentences": []}')
    completion = openai_client(scripted_llm).chat.completions.create(
        model="stub",
        messages=messages(),
        response_format=response_format,
    )
    assert json.loads(completion.choices[0].message.content or "") == {"sentences": []}
    assert scripted_llm.requests[0].body["response_format"] == response_format


def test_models_are_listed(scripted_llm: ScriptedLLM) -> None:
    assert [m.id for m in openai_client(scripted_llm).models.list()] == ["stub"]


def test_the_default_script_does_not_know(scripted_llm: ScriptedLLM) -> None:
    completion = openai_client(scripted_llm).chat.completions.create(
        model="stub", messages=messages()
    )
    assert completion.choices[0].message.content == DONT_KNOW


# LangChain's ChatOpenAI.


def test_langchain_invoke_and_stream(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.script = good_answer
    model = chat_model(scripted_llm)
    assert model.invoke(prompt()).content == GOOD
    assert "".join(str(chunk.content) for chunk in model.stream(prompt())) == GOOD
    assert [r.stream for r in scripted_llm.requests] == [False, True]
    assert all(r.model == "stub" and r.question() == QUESTION for r in scripted_llm.requests)


def test_langchain_async_invoke_and_stream(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.script = good_answer
    model = chat_model(scripted_llm)

    async def ask() -> tuple[str, str]:
        answer = await model.ainvoke(prompt())
        streamed = [str(chunk.content) async for chunk in model.astream(prompt())]
        return str(answer.content), "".join(streamed)

    assert asyncio.run(ask()) == (GOOD, GOOD)


# Failure modes: what each client raises, which the answerer has to translate.

Call = Callable[[ScriptedLLM, float], object]


def openai_plain(llm: ScriptedLLM, timeout: float) -> ChatCompletion:
    return openai_client(llm, timeout).chat.completions.create(model="stub", messages=messages())


def openai_stream(llm: ScriptedLLM, timeout: float) -> list[str | None]:
    stream = openai_client(llm, timeout).chat.completions.create(
        model="stub", messages=messages(), stream=True
    )
    return [c.choices[0].delta.content for c in stream if c.choices]


def langchain_invoke(llm: ScriptedLLM, timeout: float) -> BaseMessage:
    return chat_model(llm, timeout).invoke(prompt())


def langchain_stream(llm: ScriptedLLM, timeout: float) -> list[str]:
    return [str(chunk.content) for chunk in chat_model(llm, timeout).stream(prompt())]


CALLS = [openai_plain, openai_stream, langchain_invoke, langchain_stream]


@pytest.mark.parametrize("call", CALLS)
def test_a_500_raises_internal_server_error_without_retries(
    scripted_llm: ScriptedLLM, call: Call
) -> None:
    scripted_llm.script = server_error
    with pytest.raises(openai.InternalServerError) as raised:
        call(scripted_llm, PATIENT_S)
    assert raised.value.status_code == 500
    assert len(scripted_llm.requests) == 1


def test_the_openai_client_retries_a_500_unless_told_not_to(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.script = server_error
    client = openai.OpenAI(base_url=scripted_llm.base_url, api_key="x", max_retries=1)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="stub", messages=messages())
    assert len(scripted_llm.requests) == 2


@pytest.mark.parametrize("call", CALLS)
def test_a_reply_slower_than_the_timeout_raises_api_timeout_error(
    scripted_llm: ScriptedLLM, call: Call
) -> None:
    # The server would wait a minute; it stops as soon as the client hangs up.
    scripted_llm.script = slow(60.0)
    with pytest.raises(openai.APITimeoutError):
        call(scripted_llm, 0.5)


@pytest.mark.parametrize("call", [openai_plain, langchain_invoke])
def test_a_body_that_is_not_json_raises_json_decode_error(
    scripted_llm: ScriptedLLM, call: Call
) -> None:
    scripted_llm.script = garbage
    with pytest.raises(json.JSONDecodeError):
        call(scripted_llm, PATIENT_S)


def test_a_stream_that_is_not_sse_is_empty_for_openai_and_an_error_for_langchain(
    scripted_llm: ScriptedLLM,
) -> None:
    # The openai client finds no events in it and ends quietly: an answerer must treat a
    # stream without a finish_reason as failed.
    scripted_llm.script = garbage
    assert openai_stream(scripted_llm, PATIENT_S) == []
    with pytest.raises(ValueError, match="No generation chunks"):
        langchain_stream(scripted_llm, PATIENT_S)


def test_a_cut_stream_raises_api_connection_error_after_the_chunks_sent(
    scripted_llm: ScriptedLLM,
) -> None:
    scripted_llm.script = cut_mid_sentence
    stream = openai_client(scripted_llm).chat.completions.create(
        model="stub", messages=messages(), stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            received.extend(c.delta.content or "" for c in chunk.choices)
    text = "".join(received)
    assert text
    assert GOOD.startswith(text)
    assert len(text) < len(GOOD)


def test_a_cut_stream_raises_api_connection_error_in_langchain(
    scripted_llm: ScriptedLLM,
) -> None:
    scripted_llm.script = cut_mid_sentence
    with pytest.raises(openai.APIConnectionError):
        langchain_stream(scripted_llm, PATIENT_S)


def test_cut_mid_sentence_without_streaming_is_half_an_answer(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.script = cut_mid_sentence
    content = langchain_invoke(scripted_llm, PATIENT_S).content
    assert content == GOOD[: len(GOOD) // 2].replace(" [1]", "")


def test_nothing_listening_raises_api_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="stub", messages=messages())


def test_a_script_that_raises_is_a_500_and_recorded(scripted_llm: ScriptedLLM) -> None:
    def broken(request: ChatRequest) -> Reply:
        raise KeyError("oops")

    scripted_llm.script = broken
    with pytest.raises(openai.InternalServerError, match="KeyError"):
        openai_plain(scripted_llm, PATIENT_S)
    assert [type(e) for e in scripted_llm.script_errors] == [KeyError]


def test_a_request_that_is_not_a_chat_completion_is_a_400(scripted_llm: ScriptedLLM) -> None:
    response = httpx.post(f"{scripted_llm.base_url}/chat/completions", content=b"[]")
    assert response.status_code == 400
    assert "error" in response.json()
    assert httpx.get(f"{scripted_llm.base_url}/nowhere").status_code == 404
    assert scripted_llm.requests == []


# A client leaving a stream.


def test_a_client_leaving_a_stream_is_counted(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.script = fixed("word " * 200, chunk_chars=5, chunk_delay_s=0.05)
    body = {"model": "stub", "messages": messages(), "stream": True}
    with httpx.stream("POST", f"{scripted_llm.base_url}/chat/completions", json=body) as response:
        first = next(response.iter_lines())
    assert first.startswith("data: {")
    assert wait_for(lambda: scripted_llm.closed_early() == 1)


def test_the_openai_client_closing_a_stream_is_counted(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.script = fixed("word " * 200, chunk_chars=5, chunk_delay_s=0.05)
    stream = openai_client(scripted_llm).chat.completions.create(
        model="stub", messages=messages(), stream=True
    )
    next(iter(stream))
    stream.close()
    assert wait_for(lambda: scripted_llm.closed_early() == 1)


def test_a_stream_read_to_the_end_is_not_counted(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.script = fixed("word " * 20, chunk_chars=5, chunk_delay_s=0.01)
    assert "".join(p or "" for p in openai_stream(scripted_llm, PATIENT_S)) == "word " * 20
    assert scripted_llm.closed_early() == 0


# The server's life cycle.


def test_reset_restores_the_default_script_and_clears_the_records(
    scripted_llm: ScriptedLLM,
) -> None:
    scripted_llm.script = server_error
    with pytest.raises(openai.InternalServerError):
        openai_plain(scripted_llm, PATIENT_S)
    scripted_llm.reset()
    assert scripted_llm.requests == []
    assert scripted_llm.closed_early() == 0
    assert openai_plain(scripted_llm, PATIENT_S).choices[0].message.content == DONT_KNOW


def test_a_server_of_its_own_stops_cleanly() -> None:
    with ScriptedLLM(script=good_answer) as llm:
        assert openai_plain(llm, PATIENT_S).choices[0].message.content == GOOD
        base_url = llm.base_url
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/models")
