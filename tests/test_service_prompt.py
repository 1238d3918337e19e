"""The prompt: passages in rank order and numbered, whole while they fit, the first that does not
cut at a sentence end, all within the token budget by the counter in use."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from index.retrieve import Hit
from ingest.models import Chunk
from service.prompt import DECLINE, Prompt, build_prompt
from service.tokens import ByteEstimate, TokenCounter

QUESTION = "How many border crossings does Astoria have?"
ASK = f"<question>{QUESTION}</question>"
ROOMY = 1_000_000


@dataclass(frozen=True)
class WordCounter:
    """Counts words, so that the count of a text is the sum of the counts of its parts."""

    name: str = "words"

    def count(self, text: str) -> int:
        return len(text.split())


WORDS = WordCounter()


def sentences(topic: str, count: int) -> list[str]:
    """`count` sentences of 11 words each."""
    return [f"Sentence {i} of the {topic} passage says one thing about it." for i in range(count)]


def hit(row: int, title: str, text: str, pages: tuple[int, int] = (1, 1)) -> Hit:
    chunk = Chunk(f"c{row}", f"d{row}", text, pages[0], pages[1], (), 0, len(text))
    return Hit(row, chunk, f"{title}.txt", title, 1.0 / (row + 1))


BORDER = hit(0, "Border", " ".join(sentences("border", 3)))
ENERGY = hit(1, "Energy", " ".join(sentences("energy", 30)), pages=(3, 4))
WIND = hit(2, "Wind", " ".join(sentences("wind", 3)))
HITS = [BORDER, ENERGY, WIND]


def prompt(hits: list[Hit], budget: int, counter: TokenCounter = WORDS, **options: bool) -> Prompt:
    return build_prompt(QUESTION, hits, counter, budget=budget, **options)


def header_tokens(before: list[Hit], passage: Hit) -> int:
    """What `passage`'s block costs besides its text, after the passages `before` (words are
    additive, so this is exact)."""
    without = prompt(before, ROOMY).tokens
    with_it = prompt([*before, passage], ROOMY).tokens
    return with_it - without - WORDS.count(passage.chunk.text)


def test_passages_go_whole_in_rank_order_numbered_from_one() -> None:
    built = prompt(HITS, ROOMY)
    assert built.passages == HITS
    assert built.texts == [h.chunk.text for h in HITS]
    blocks = [
        f'<passage n="1" title="Border" page="1">\n{BORDER.chunk.text}\n</passage>',
        f'<passage n="2" title="Energy" page="3-4">\n{ENERGY.chunk.text}\n</passage>',
        f'<passage n="3" title="Wind" page="1">\n{WIND.chunk.text}\n</passage>',
    ]
    assert built.user == "\n".join([*blocks, ASK])


def test_the_first_passage_that_does_not_fit_is_cut_at_a_sentence_end() -> None:
    # Room for 64 words of the energy passage's text: five sentences of 11 words, not six.
    budget = prompt([BORDER], ROOMY).tokens + header_tokens([BORDER], ENERGY) + 64
    built = prompt(HITS, budget)
    assert built.passages == [BORDER, ENERGY]
    assert built.texts == [BORDER.chunk.text, " ".join(sentences("energy", 5))]
    assert f"{built.texts[1]}\n</passage>\n{ASK}" in built.user
    assert "Wind" not in built.user
    assert built.tokens <= budget


def test_a_passage_is_left_out_rather_than_cut_below_64_tokens_of_room() -> None:
    budget = prompt([BORDER], ROOMY).tokens + header_tokens([BORDER], ENERGY) + 63
    built = prompt(HITS, budget)
    assert built.passages == [BORDER]
    assert built.texts == [BORDER.chunk.text]
    assert "Energy" not in built.user and "Wind" not in built.user


def test_the_first_passage_may_be_the_one_cut() -> None:
    budget = prompt([], ROOMY).tokens + header_tokens([], ENERGY) + 100
    built = prompt([ENERGY, BORDER], budget)
    assert built.passages == [ENERGY]
    assert built.texts == [" ".join(sentences("energy", 9))]


def test_after_a_passage_that_does_not_fit_at_all_none_follows() -> None:
    # One sentence longer than the room: nothing of it can go in, and the short passage after it
    # stays out too, so that the passages keep their ranks.
    long = hit(5, "Long", " ".join(["word"] * 400) + ".")
    budget = prompt([BORDER], ROOMY).tokens + 300
    assert prompt([BORDER, WIND], budget).passages == [BORDER, WIND]
    built = prompt([BORDER, long, WIND], budget)
    assert built.passages == [BORDER]
    assert "Wind" not in built.user


@pytest.mark.parametrize("counter", [WORDS, ByteEstimate()], ids=["words", "bytes"])
def test_the_prompt_stays_within_the_budget_by_the_counter_used(counter: TokenCounter) -> None:
    smallest = prompt([], ROOMY, counter).tokens
    largest = prompt(HITS, ROOMY, counter).tokens
    for budget in range(smallest, largest + 10):
        built = prompt(HITS, budget, counter)
        assert counter.count(built.system) + counter.count(built.user) <= built.tokens <= budget
        kept = len(built.passages)
        assert built.passages == HITS[:kept]
        assert built.texts[:-1] == [h.chunk.text for h in HITS[: max(kept - 1, 0)]]
        if kept:
            last, text = built.passages[-1].chunk.text, built.texts[-1]
            assert last.startswith(text)
            assert text == last or (text.endswith(".") and last[len(text)] == " ")


def test_titles_are_escaped_in_the_passage_tag() -> None:
    tricky = hit(3, 'Astoria\'s "Doctrine" <2019> & more', "Astoria has four crossings.")
    built = prompt([tricky], ROOMY)
    assert (
        '<passage n="1" title="Astoria&#x27;s &quot;Doctrine&quot; &lt;2019&gt; &amp; more" '
        'page="1">'
    ) in built.user
    assert '"Doctrine"' not in built.user and "<2019>" not in built.user


def test_the_instructions_ask_for_json_only_when_json_output_is_on() -> None:
    plain = prompt(HITS, ROOMY)
    structured = prompt(HITS, ROOMY, json_output=True)
    assert '{"sentences"' not in plain.system
    assert structured.system.startswith(plain.system)
    assert '{"sentences": [{"text": "...", "passages": [1, 3]}]}' in structured.system
    assert structured.user == plain.user
    assert structured.tokens > plain.tokens


def test_the_instructions_say_how_many_sentences_and_how_to_decline() -> None:
    built = build_prompt(QUESTION, HITS, WORDS, budget=ROOMY, max_sentences=2)
    assert "at most 2 short sentences" in built.system
    assert DECLINE in built.system


@pytest.mark.parametrize("room", [0, 10, 63])
def test_a_budget_too_small_for_any_passage_gives_no_passages(room: int) -> None:
    budget = prompt([], ROOMY).tokens + room
    built = prompt([ENERGY, BORDER], budget)
    assert built.passages == [] and built.texts == []
    assert built.user == ASK


def test_a_budget_smaller_than_the_instructions_says_how_large_the_prompt_is() -> None:
    built = prompt(HITS, 10)
    assert built.passages == []
    assert built.tokens == prompt([], ROOMY).tokens > 10
