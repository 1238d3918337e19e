"""Generative answers over HTTP, with a scripted LLM spoken to through the real LangChain client.

Every script ends as a verified answer, a dropped sentence, an abstention or a flagged fallback:
never a 500, never a sentence whose citation was not verified. The app runs in process with the
fake embedder over the small index of the answerer contract; the LLM is a real HTTP server
(tests/llm_stub.py) that the service reaches through `langchain_openai.ChatOpenAI`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from index.store import Index
from service.build import LlmSettingsError, build_app
from service.settings import Settings
from tests.answerer_contract import FILES
from tests.fakes import FakeEmbedder, build_index
from tests.llm_stub import (
    NOT_IN_PASSAGES,
    ChatRequest,
    Reply,
    ScriptedLLM,
    cut_mid_sentence,
    garbage,
    good_answer,
    not_in_passages,
    server_error,
    slow,
)
from tests.served import Served

BORDER = "How many border crossings does Astoria have with Northland?"
STORAGE = "How often does the regulator check the gas storage level?"
TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def index_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("generative")
    index: Index = build_index(root, FILES, FakeEmbedder())
    index.close()
    return root


Clients = Callable[..., TestClient]


@pytest.fixture(scope="module")
def clients(index_root: Path, _scripted_llm_server: ScriptedLLM) -> Iterator[Clients]:
    """An app per set of settings, each kept for the module (building one costs a second)."""
    made: dict[tuple[tuple[str, Any], ...], TestClient] = {}

    def client(**overrides: Any) -> TestClient:
        key = tuple(sorted(overrides.items()))
        if key not in made:
            settings = Settings(
                index_dir=index_root,
                abstain_min_similarity=0.4,  # the fake embedder's cosines run low
                **{**_llm_settings(_scripted_llm_server), **overrides},
            )
            made[key] = TestClient(
                build_app(settings, embedder=FakeEmbedder()), raise_server_exceptions=False
            ).__enter__()
        return made[key]

    yield client
    for live in made.values():
        live.__exit__(None, None, None)


def _llm_settings(llm: ScriptedLLM) -> dict[str, Any]:
    return {
        "llm_base_url": llm.base_url,
        "llm_model": "stub",
        "llm_timeout_s": TIMEOUT_S,
        "answerer": "generative",
    }


def ask(client: TestClient, question: str, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/ask", json={"question": question, "k": 4, **body})
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    assert_verified(client, payload)
    return payload


def assert_verified(client: TestClient, payload: dict[str, Any]) -> None:
    """Every citation's quote stands on its page at its offsets, and marks the sentence it
    supports; an abstention cites nothing."""
    text = payload["answer"]
    if payload["abstained"]:
        assert payload["citations"] == [] and "[" not in text
        return
    assert payload["citations"]
    for citation in payload["citations"]:
        page = client.get(f"/v1/documents/{citation['doc_id']}/pages/{citation['page']}").json()
        assert page["text"][citation["quote_start"] : citation["quote_end"]] == citation["quote"]
        sentence = text[citation["answer_start"] : citation["answer_end"]]
        assert sentence and "[" not in sentence
        assert text[citation["answer_end"] :].lstrip().startswith("[")


def cite(needle: str, sentence: str, **reply: Any) -> Callable[[ChatRequest], Reply]:
    """A script that writes `sentence` citing the passage that holds `needle` ("{n}" in the
    sentence is that passage's number)."""

    def script(request: ChatRequest) -> Reply:
        passages = request.passages()
        n = next(n for n, text in passages.items() if needle in text)
        return Reply(text=sentence.format(n=n), **reply)

    return script


def test_a_good_draft_is_the_answer_in_the_models_words(
    clients: Clients, scripted_llm: ScriptedLLM
) -> None:
    scripted_llm.script = cite(
        "four border crossings",
        "Astoria has four border crossings with Northland [{n}]. "
        "Trucks wait two hours at the busiest crossing [{n}].",
    )
    payload = ask(clients(), BORDER)
    assert payload["answerer"] == "generative" and payload["fallback"] is None
    assert payload["answer"] == (
        "Astoria has four border crossings with Northland. [1] "
        "Trucks wait two hours at the busiest crossing. [2]"
    )
    assert payload["dropped"] == [] and not payload["abstained"]
    quotes = [c["quote"] for c in payload["citations"]]
    assert quotes == [
        "Astoria has four border crossings with Northland.",
        "Trucks wait two hours at the busiest crossing.",
    ]
    # What the model read: instructions, the passages numbered, the question.
    request = scripted_llm.requests[-1]
    assert request.question() == BORDER
    assert request.stream and request.body["max_tokens"] == Settings().llm_max_tokens
    assert len(request.passages()) == len(payload["passages"]) == 3  # all the index has


def _llm_stage(client: TestClient) -> tuple[float, float]:
    """How many answers /metrics has timed in the LLM stage, and their seconds in all."""
    found = {"count": 0.0, "sum": 0.0}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name.startswith(
                "chancery_answer_stage_duration_seconds_"
            ) and sample.labels == {"stage": "llm", "answerer": "generative"}:
                found[sample.name.rsplit("_", 1)[-1]] = sample.value
    return found["count"], found["sum"]


def test_the_time_spent_waiting_on_the_llm_is_timed_and_counted(
    clients: Clients, scripted_llm: ScriptedLLM
) -> None:
    client = clients()
    count, seconds = _llm_stage(client)
    sentence = "Astoria has four border crossings with Northland [{n}]."
    # Five pieces, each 40 ms after the last: at least 0.2 s waiting on the model.
    chars = len(sentence) // 5 + 1
    scripted_llm.script = cite(
        "four border crossings", sentence, chunk_chars=chars, chunk_delay_s=0.04
    )
    payload = ask(client, BORDER)
    assert payload["answerer"] == "generative"
    timings = payload["timings_ms"]
    assert 200 <= timings["llm_ms"] <= timings["answer_ms"] <= timings["total_ms"]
    now_count, now_seconds = _llm_stage(client)
    assert now_count == count + 1
    assert now_seconds - seconds == pytest.approx(timings["llm_ms"] / 1000, abs=1e-6)


def test_an_extractive_answer_reports_no_llm_time(clients: Clients) -> None:
    payload = ask(clients(), BORDER, answerer="extractive")
    assert "llm_ms" not in payload["timings_ms"]


@pytest.mark.parametrize(
    ("draft", "reason"),
    [
        (
            'The report says "the border will close to trucks in winter" [{n}].',
            "quotes words the passages it cites do not contain",
        ),
        ("Astoria has 5 border crossings with Northland [{n}].", "the number 5"),
        ("Astoria has five border crossings with Northland [{n}].", "the number five"),
        ("Velmark has four border crossings with Northland [{n}].", "it names velmark"),
        ("Astoria has four border crossings with Northland [9].", "it cites [9]"),
        ("Astoria has four border crossings with Northland.", "it cites no passage"),
        ("Wind farms on the coast grow each year [{n}].", "no sentence of the passages"),
    ],
    ids=[
        "invented-quote",
        "wrong-number",
        "wrong-number-in-words",
        "wrong-country",
        "no-such-passage",
        "no-citation",
        "claim-not-in-the-passage-cited",
    ],
)
def test_a_claim_the_passages_do_not_support_is_dropped_and_the_answer_falls_back(
    clients: Clients, scripted_llm: ScriptedLLM, draft: str, reason: str
) -> None:
    scripted_llm.script = cite("four border crossings", draft)
    payload = ask(clients(), BORDER)
    assert payload["answerer"] == "extractive"
    assert "no sentence of the generative draft passed verification" in payload["fallback"]
    assert len(payload["dropped"]) == 1 and reason in payload["dropped"][0], payload["dropped"]
    # What stands in is the extractive answer itself, word for word.
    extractive = ask(clients(), BORDER, answerer="extractive")
    assert payload["answer"] == extractive["answer"]


def test_a_claim_that_swaps_who_did_what_is_dropped(
    clients: Clients, scripted_llm: ScriptedLLM
) -> None:
    # The quote says Northland imports the gas, not Astoria (tests/test_service_claims.py has
    # the case where the passage names both).
    scripted_llm.script = cite(
        "imports most of its gas",
        "Northland imports most of its gas from Velmark by pipeline [{n}]. "
        "Astoria imports most of its gas from Velmark by pipeline [{n}].",
    )
    payload = ask(clients(), "Where does Northland get its gas?")
    assert payload["answerer"] == "generative"
    assert payload["answer"] == "Northland imports most of its gas from Velmark by pipeline. [1]"
    assert payload["dropped"] == [
        "sentence 2: it names astoria, which the passages it cites do not"
    ]


def test_only_the_sentences_that_pass_are_kept(clients: Clients, scripted_llm: ScriptedLLM) -> None:
    scripted_llm.script = cite(
        "four border crossings",
        "Astoria has four border crossings with Northland [{n}]. "
        "Astoria has 12 border crossings with Velmark [{n}].",
    )
    payload = ask(clients(), BORDER)
    assert payload["answerer"] == "generative" and payload["fallback"] is None
    assert payload["answer"] == "Astoria has four border crossings with Northland. [1]"
    assert payload["dropped"] == ["sentence 2: the number 12 is not in the passages it cites"]


def test_the_models_refusal_falls_back_to_the_extractive_answer(
    clients: Clients, scripted_llm: ScriptedLLM
) -> None:
    scripted_llm.script = not_in_passages
    payload = ask(clients(), BORDER)
    assert payload["answerer"] == "extractive" and not payload["abstained"]
    assert payload["fallback"] == "the LLM said the passages do not answer the question"


def test_with_no_fallback_the_models_refusal_is_an_abstention(
    clients: Clients, scripted_llm: ScriptedLLM
) -> None:
    scripted_llm.script = not_in_passages
    payload = ask(clients(llm_fallback="abstain"), BORDER)
    assert payload["answerer"] == "generative" and payload["abstained"]
    assert payload["fallback"] is None and payload["passages"]
    assert NOT_IN_PASSAGES not in payload["answer"]


FAILURES = {
    "server-error": (server_error, "answered with HTTP status 500"),
    "garbage": (garbage, "sent a reply that is not a chat completion"),
    "timeout": (slow(TIMEOUT_S * 3), f"did not answer within {TIMEOUT_S:g} s"),
}


@pytest.mark.parametrize("failure", FAILURES)
def test_an_llm_failure_falls_back_flagged(
    clients: Clients, scripted_llm: ScriptedLLM, failure: str
) -> None:
    script, why = FAILURES[failure]
    scripted_llm.script = script
    payload = ask(clients(), BORDER)
    assert payload["answerer"] == "extractive" and not payload["abstained"]
    assert why in payload["fallback"] and scripted_llm.base_url in payload["fallback"]


@pytest.mark.parametrize("failure", FAILURES)
def test_without_a_fallback_an_llm_failure_is_a_503_that_says_why(
    clients: Clients, scripted_llm: ScriptedLLM, failure: str
) -> None:
    script, why = FAILURES[failure]
    scripted_llm.script = script
    for stream in (False, True):
        response = clients(llm_fallback="abstain").post(
            "/v1/ask", json={"question": BORDER, "stream": stream}
        )
        assert response.status_code == 503, response.text
        assert why in response.json()["detail"]


def test_an_unreachable_llm_is_a_503_without_fallback(clients: Clients, tmp_path: Path) -> None:
    closed = ScriptedLLM()
    closed.start()
    base_url = closed.base_url
    closed.stop()
    response = clients(llm_fallback="abstain", llm_base_url=base_url).post(
        "/v1/ask", json={"question": BORDER}
    )
    assert response.status_code == 503
    assert "cannot be reached" in response.json()["detail"]


def test_a_stream_cut_mid_sentence_keeps_only_the_verified_sentences(
    clients: Clients, scripted_llm: ScriptedLLM
) -> None:
    first = "Astoria has four border crossings with Northland [{n}]. "
    second = "Trucks wait two hours at the busiest crossing [{n}]."

    def script(request: ChatRequest) -> Reply:
        reply = cite("four border crossings", first + second)(request)
        # Cut in the middle of the second sentence: chunks of one character.
        return Reply(text=reply.text, chunk_chars=1, cut_after_chunks=len(first) + 20)

    scripted_llm.script = script
    payload = ask(clients(), BORDER)
    assert payload["answerer"] == "generative"
    assert payload["answer"] == "Astoria has four border crossings with Northland. [1]"
    assert any("broke off" in note for note in payload["notes"])
    assert payload["dropped"] == ["sentence 2: the model stopped mid-sentence"]


def test_a_stream_cut_in_the_first_sentence_falls_back(
    clients: Clients, scripted_llm: ScriptedLLM
) -> None:
    scripted_llm.script = cut_mid_sentence
    payload = ask(clients(), BORDER)
    # good_answer's first sentence is cut: nothing verified, so the extractive answer stands.
    assert payload["answerer"] == "extractive"
    assert payload["fallback"] and "broke off its reply" in payload["fallback"]
    assert payload["dropped"] == ["sentence 1: the model stopped mid-sentence"]


def test_a_reply_cut_by_the_token_limit_drops_its_last_sentence(
    clients: Clients, scripted_llm: ScriptedLLM
) -> None:
    scripted_llm.script = cite(
        "four border crossings",
        "Astoria has four border crossings with Northland [{n}]. Trucks wait two",
        finish_reason="length",
    )
    payload = ask(clients(), BORDER)
    assert payload["answer"] == "Astoria has four border crossings with Northland. [1]"
    assert payload["dropped"] == ["sentence 2: the model stopped mid-sentence"]
    assert payload["notes"] == ["The model stopped early (finish reason: length)."]


def test_json_drafts_are_read_and_malformed_json_is_read_as_text(
    clients: Clients, scripted_llm: ScriptedLLM
) -> None:
    def as_json(request: ChatRequest) -> Reply:
        n = next(n for n, t in request.passages().items() if "four border crossings" in t)
        sentences = [{"text": "Astoria has four border crossings with Northland.", "passages": [n]}]
        return Reply(text=json.dumps({"sentences": sentences}))

    client = clients(llm_json=True)
    scripted_llm.script = as_json
    payload = ask(client, BORDER)
    assert payload["answerer"] == "generative"
    assert payload["answer"] == "Astoria has four border crossings with Northland. [1]"
    assert scripted_llm.requests[-1].body["response_format"] == {"type": "json_object"}

    scripted_llm.script = cite("four border crossings", '{"sentences": [{"text": "Astoria [{n}]')
    payload = ask(client, BORDER)
    assert payload["answerer"] == "extractive" and payload["fallback"]


def test_the_request_picks_the_answerer(
    clients: Clients, scripted_llm: ScriptedLLM, index_root: Path
) -> None:
    payload = ask(clients(), BORDER, answerer="extractive")
    assert payload["answerer"] == "extractive" and payload["fallback"] is None
    assert scripted_llm.requests == []

    scripted_llm.script = good_answer
    payload = ask(clients(answerer="extractive"), BORDER, answerer="generative")
    assert payload["answerer"] == "generative"

    app = build_app(Settings(index_dir=index_root), embedder=FakeEmbedder())
    with TestClient(app) as plain:
        response = plain.post("/v1/ask", json={"question": BORDER, "answerer": "generative"})
        assert response.status_code == 400
        assert "CHANCERY_LLM_BASE_URL" in response.json()["detail"]
        assert ask(plain, BORDER)["answerer"] == "extractive"


def test_generative_settings_without_an_llm_stop_the_app_with_one_sentence(
    index_root: Path,
) -> None:
    with pytest.raises(LlmSettingsError, match="CHANCERY_LLM_BASE_URL"):
        build_app(Settings(index_dir=index_root, answerer="generative"))
    with pytest.raises(LlmSettingsError, match="CHANCERY_LLM_MODEL"):
        build_app(Settings(index_dir=index_root, llm_base_url="http://127.0.0.1:9/v1"))


def test_the_prompt_keeps_to_the_context_budget(
    clients: Clients, scripted_llm: ScriptedLLM
) -> None:
    scripted_llm.script = good_answer
    client = clients(llm_context_tokens=600, llm_max_tokens=256)
    ask(client, BORDER)
    request = scripted_llm.requests[-1]
    prompt = "".join(str(m["content"]) for m in request.messages)
    # The byte estimate (no tiktoken file here) counts 3 bytes a token: the whole prompt fits.
    assert len(prompt.encode()) / 3 <= 600 - 256
    assert 1 <= len(request.passages()) < 3


def events(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    parsed = []
    for block in response.text.split("\n\n"):
        if block.strip():
            name, data = block.split("\n", 1)
            parsed.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return parsed


def test_a_streamed_generative_answer_sends_each_sentence_once_verified(
    clients: Clients, scripted_llm: ScriptedLLM
) -> None:
    scripted_llm.script = cite(
        "four border crossings",
        "Astoria has four border crossings with Northland [{n}]. "
        "Astoria has 12 border crossings with Velmark [{n}]. "
        "Trucks wait two hours at the busiest crossing [{n}].",
    )
    client = clients()
    response = client.post("/v1/ask", json={"question": BORDER, "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    streamed = events(response)
    assert [name for name, _ in streamed] == ["passages", "sentence", "sentence", "done"]
    sentences = [data for name, data in streamed if name == "sentence"]
    assert [s["text"] for s in sentences] == [
        "Astoria has four border crossings with Northland.",
        "Trucks wait two hours at the busiest crossing.",
    ]
    assert [[c["n"] for c in s["citations"]] for s in sentences] == [[1], [2]]
    done = streamed[-1][1]
    assert done["answerer"] == "generative" and len(done["dropped"]) == 1


def test_a_client_that_leaves_stops_the_llm(
    index_root: Path, _scripted_llm_server: ScriptedLLM
) -> None:
    llm = _scripted_llm_server
    llm.reset()
    sentence = "Astoria has four border crossings with Northland [{n}]. "
    llm.script = cite("four border crossings", sentence * 40, chunk_chars=8, chunk_delay_s=0.05)
    settings = Settings(index_dir=index_root, abstain_min_similarity=0.4, **_llm_settings(llm))
    with Served(build_app(settings, embedder=FakeEmbedder())) as base_url:
        body = {"question": BORDER, "stream": True}
        with httpx.stream("POST", f"{base_url}/v1/ask", json=body, timeout=30) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line == "event: sentence":
                    break  # one verified sentence is enough; the rest would take 20 s
        deadline = threading.Event()
        for _ in range(200):
            if llm.closed_early() == 1:
                break
            deadline.wait(0.05)
        assert llm.closed_early() == 1
