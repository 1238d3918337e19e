"""Follow-up questions made standalone (service/followup.py), and a streamed chat answer's content
built sentence by sentence (service/routers/chat_mapping.py): pure functions, no server."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import pytest

from service.answering import Answer, Citation, Sentence, stream_whole
from service.chat_schemas import Usage
from service.engine import AskResult
from service.followup import LlmRewriter, Turn, standalone, with_context
from service.llm import Delta, LlmError, LlmOptions, TokenUsage
from service.routers.chat_errors import ModelNotFoundError
from service.routers.chat_mapping import Chunks, Exchange, collection_of, page_link, sources_list

ARMY = "What does Serbia's strategy say about the army?"


@pytest.mark.parametrize(
    ("earlier", "question", "searched"),
    [
        ([ARMY], "And what about its budget?", "And what about its budget? (Serbia, army)"),
        ([ARMY], "How large is it?", "How large is it? (Serbia, army)"),
        # Names its own subject and goes on: the earlier topic, not the earlier name.
        ([ARMY], "And what about Kosovo?", "And what about Kosovo? (army)"),
        # Standalone: its own subject, no reference back.
        ([ARMY], "How does Kosovo view NATO?", "How does Kosovo view NATO?"),
        # The subject is the latest question that names one; the topic the latest one with any.
        (
            ["What is NATO's role in Kosovo?", "And the budget of the mission?"],
            "Who pays for it?",
            "Who pays for it? (NATO, Kosovo, budget, mission)",
        ),
        ([], "What about the budget?", "What about the budget?"),
    ],
)
def test_rules_add_the_earlier_subject_where_the_follow_up_leaves_it_out(
    earlier: list[str], question: str, searched: str
) -> None:
    assert with_context(question, earlier) == searched


def test_only_user_turns_feed_the_rules() -> None:
    turns = [
        Turn("user", ARMY),
        Turn("assistant", "Kosovo Security Force and NATO are named on page 3. [1]"),
        Turn("user", "And what about its budget?"),
    ]
    asked = standalone(turns)
    assert (asked.question, asked.method) == ("And what about its budget? (Serbia, army)", "rules")


def test_a_first_question_is_asked_as_it_is() -> None:
    asked = standalone([Turn("user", "  How does Kosovo view NATO? ")])
    assert (asked.question, asked.method) == ("How does Kosovo view NATO?", "none")


class ScriptedChat:
    """A ChatModel that replies with `reply`, or raises `LlmError`, and records what it got."""

    def __init__(self, reply: str | None) -> None:
        self.reply = reply
        self.asked: list[tuple[str, str, LlmOptions | None]] = []

    def stream(self, system: str, user: str, options: LlmOptions | None = None) -> Iterator[Delta]:
        self.asked.append((system, user, options))
        if self.reply is None:
            raise LlmError("the LLM at x cannot be reached")
        yield Delta(self.reply, "stop")


CONVERSATION = [
    Turn("user", ARMY),
    Turn("assistant", "The army must be modern. [1]\n\nSources:\n- [1] Strategy, page 2: “…”"),
    Turn("user", "And its budget?"),
]


@pytest.mark.parametrize(
    "reply", ["What is Serbia's defence budget?", 'Question: "What is Serbia\'s defence budget?"\n']
)
def test_the_llm_rewrites_a_follow_up_from_the_conversation(reply: str) -> None:
    chat = ScriptedChat(reply)
    counted = TokenUsage()
    asked = standalone(CONVERSATION, LlmRewriter(chat), LlmOptions(temperature=1.0, usage=counted))
    assert (asked.question, asked.method) == ("What is Serbia's defence budget?", "llm")
    _, user, options = chat.asked[0]
    # The answer's words without its markers and sources; the request's own options are not the
    # rewrite's (it is always deterministic), but its usage is counted with the answer's.
    assert "The army must be modern." in user and "Sources" not in user and "[1]" not in user
    assert options is not None and options.temperature == 0 and options.usage is counted


@pytest.mark.parametrize("reply", [None, "", "x" * 2001])
def test_when_the_llm_fails_or_writes_nothing_usable_the_rules_stand_in(reply: str | None) -> None:
    asked = standalone(CONVERSATION, LlmRewriter(ScriptedChat(reply)))
    assert (asked.question, asked.method) == ("And its budget? (Serbia, army)", "rules")


def test_a_first_question_is_not_sent_to_the_llm() -> None:
    chat = ScriptedChat("never")
    assert standalone([Turn("user", ARMY)], LlmRewriter(chat)).question == ARMY
    assert chat.asked == []


# -- models and content -----------------------------------------------------------------------


def test_model_names_map_to_collections() -> None:
    assert collection_of("chancery") == "default"
    assert collection_of("chancery/serbia") == "serbia"
    for unknown in ("gpt-4o", "chancery/", "Chancery"):
        with pytest.raises(ModelNotFoundError):
            collection_of(unknown)


def _citation(quote: str, start: int, page: int = 2, label: str | None = None) -> Citation:
    return Citation(
        doc_id="strategy~ab12.pdf",
        doc="Strategy.pdf",
        title="",
        page=page,
        page_label=label,
        quote=quote,
        quote_start=10,
        quote_end=10 + len(quote),
        chunk_id="c1",
        score=0.9,
        answer_start=start,
        answer_end=start + len(quote),
    )


def test_a_page_link_opens_the_web_page_at_the_quote() -> None:
    link = page_link("serbia", _citation("Peace & order: 5%?", 0))
    assert link == (
        "/documents/strategy~ab12.pdf/pages/2?collection=serbia&quote=Peace+%26+order%3A+5%25%3F"
        "&start=10&end=28"
    )


def test_sources_name_title_page_and_a_short_quote() -> None:
    quote = "The army " + "must be modern and ready " * 8 + "to defend."
    listed = sources_list([_citation(quote, 0, page=5, label="iii")])
    assert listed.startswith("\n\nSources:\n- [1] Strategy.pdf, page 5 (printed iii): “The army")
    assert listed.endswith("…”") and len(listed) < 200


def _exchange() -> Exchange:
    from service.followup import Standalone

    return Exchange(
        id="chatcmpl-1",
        created=0,
        model="chancery",
        collection="default",
        base_url="http://127.0.0.1:8000",
        asked=Standalone("Which steps?", "none"),
        sources=False,
        usage_of=lambda result, content: (
            Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2),
            "estimate",
        ),
    )


def test_streamed_sentences_join_as_the_answers_text_lists_included() -> None:
    # The extractive answerer puts list items on lines of their own.
    lead, first, second = "The plan has two steps:", "Train the army.", "Raise the budget."
    text = f"{lead} [1]\n- {first} [2]\n- {second} [3]"
    starts = [0, text.index(first), text.index(second)]
    citations = [_citation(q, s) for q, s in zip((lead, first, second), starts, strict=True)]
    answer = Answer(text, False, citations, [])
    chunks = Chunks(_exchange(), include_usage=False)
    pieces = []
    for part in stream_whole(answer):
        if isinstance(part, Sentence):
            pieces.append(chunks.sentence(part).choices[0].delta.content)
    closing = chunks.closing(AskResult(answer, "default", "v-1", {}))
    pieces.append(closing[-1].choices[0].delta.content)
    assert "".join(p or "" for p in pieces) == text
    assert closing[-1].choices[0].delta.content == ""  # all of it went out sentence by sentence


def test_a_failure_after_the_stream_began_ends_it_with_an_error_envelope() -> None:
    import json

    from service.routers.chat import _events

    sentence = Sentence("Train the army.", [(1, _citation("Train the army.", 0))])

    def parts() -> Generator[Any, None, None]:
        yield sentence
        raise LlmError("the LLM at x broke off its reply (connection lost)")

    recorded: list[Any] = []
    lines = list(_events([], parts(), Chunks(_exchange(), include_usage=False), recorded.append))
    assert recorded == []  # no answer finished, so none is audited
    data = [json.loads(line.removeprefix("data: ")) for line in lines]
    assert data[1]["choices"][0]["delta"]["content"] == "Train the army. [1]"
    # The openai client raises a `data:` line holding an `error` as an APIError.
    assert data[-1] == {
        "error": {
            "message": "the LLM at x broke off its reply (connection lost)",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    assert "[DONE]" not in "".join(lines)
