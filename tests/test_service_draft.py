"""Reading a model's draft into claims: markers wherever models put them, and the same claims
however the stream cuts the draft into pieces."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.draft import Claim, ClaimReader, claim_of, declines, json_claims


@pytest.mark.parametrize(
    ("sentence", "text", "passages"),
    [
        ("Astoria is neutral [1].", "Astoria is neutral.", (1,)),
        ("Astoria is neutral. [1]", "Astoria is neutral.", (1,)),
        ("Astoria is neutral [1][3].", "Astoria is neutral.", (1, 3)),
        ("Astoria is neutral [1] [3].", "Astoria is neutral.", (1, 3)),
        ("Astoria is neutral [1, 3].", "Astoria is neutral.", (1, 3)),
        ("Astoria is neutral [3; 1].", "Astoria is neutral.", (3, 1)),
        ("Astoria [2] is neutral [1].", "Astoria is neutral.", (2, 1)),
        ("Astoria is neutral [1] and calm [1][1].", "Astoria is neutral and calm.", (1,)),
        (
            "Astoria is neutral [1], Velmark [2, 1] is not.",
            "Astoria is neutral, Velmark is not.",
            (1, 2),
        ),
        ("- Astoria is neutral [2]", "Astoria is neutral", (2,)),
        ("* Astoria is neutral [2]", "Astoria is neutral", (2,)),
        ("1. Astoria is neutral [2]", "Astoria is neutral", (2,)),
        ("2) Astoria is neutral [2]", "Astoria is neutral", (2,)),
        ("  Astoria   is\nneutral [12].", "Astoria is neutral.", (12,)),
        ("Astoria is neutral.", "Astoria is neutral.", ()),
        ("Astoria is neutral. [1].", "Astoria is neutral.", (1,)),
        ("Is Astoria neutral? [2].", "Is Astoria neutral?", (2,)),
        ("Astoria waited... [1]", "Astoria waited...", (1,)),
    ],
)
def test_claim_of_reads_markers_wherever_they_stand(
    sentence: str, text: str, passages: tuple[int, ...]
) -> None:
    assert claim_of(7, sentence) == Claim(7, text, passages)


@pytest.mark.parametrize("sentence", ["", "   ", "[1]", " [1][2]. ", "- [2]", "1. [2]", "…", "---"])
def test_a_sentence_without_words_is_no_claim(sentence: str) -> None:
    assert claim_of(1, sentence) is None


def claims_of(pieces: list[str]) -> list[Claim]:
    reader = ClaimReader()
    found = [claim for piece in pieces for claim in reader.feed(piece)]
    return found + reader.finish()


DRAFTS = {
    "Astoria has four border crossings with Northland [1]. Trucks wait two hours [1][2].": [
        Claim(1, "Astoria has four border crossings with Northland.", (1,)),
        Claim(2, "Trucks wait two hours.", (1, 2)),
    ],
    "Astoria is neutral. [1] Velmark is not [2].\nSee e.g. the U.S. report No. 5 [3]. "
    "Growth was 3.5% in 2019 [1, 3].": [
        Claim(1, "Astoria is neutral.", (1,)),
        Claim(2, "Velmark is not.", (2,)),
        Claim(3, "See e.g. the U.S. report No. 5.", (3,)),
        Claim(4, "Growth was 3.5% in 2019.", (1, 3)),
    ],
    "Astoria has:\n- four crossings [2]\n- two ports [3]\n1. a pipeline [1]": [
        Claim(1, "Astoria has:", ()),
        Claim(2, "four crossings", (2,)),
        Claim(3, "two ports", (3,)),
        Claim(4, "a pipeline", (1,)),
    ],
    'The strategy calls it "shared." [4] Is it? [2] Yes!\n\n[1] It is [1].': [
        Claim(1, 'The strategy calls it "shared."', (4,)),
        Claim(2, "Is it?", (2,)),
        Claim(3, "Yes!", (1,)),
        Claim(4, "It is.", (1,)),
    ],
    'It calls security "shared ... and indivisible" [1]. It is … still [2]. NOT_IN_PASSAGES': [
        Claim(1, 'It calls security "shared... and indivisible".', (1,)),
        Claim(2, "It is … still.", (2,)),
        Claim(3, "NOT_IN_PASSAGES", ()),
    ],
}


@pytest.mark.parametrize("draft", DRAFTS)
def test_a_draft_read_whole_gives_its_claims(draft: str) -> None:
    assert claims_of([draft]) == DRAFTS[draft]


@pytest.mark.parametrize("draft", DRAFTS)
def test_every_split_of_a_draft_gives_the_same_claims(draft: str) -> None:
    whole = claims_of([draft])
    for first in range(len(draft) + 1):
        for second in range(first, len(draft) + 1):
            pieces = [draft[:first], draft[first:second], draft[second:]]
            assert claims_of(pieces) == whole, pieces


@pytest.mark.parametrize("draft", DRAFTS)
def test_a_draft_fed_one_character_at_a_time_gives_the_same_claims(draft: str) -> None:
    assert claims_of(list(draft)) == claims_of([draft])


_ATOMS = [
    "Astoria", " is", " neutral", "Velmark", " 3.5%", " e.g.", " U.S.", " No. 5", ".", "!", "?",
    "…", "...", " ", "\n", "[1]", " [2]", "[1, 3]", "[", "]", "- ", "1. ", '"', ")",
]  # fmt: skip


@given(
    atoms=st.lists(st.sampled_from(_ATOMS), max_size=24),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6),
)
def test_any_split_of_any_draft_gives_the_same_claims(atoms: list[str], cuts: list[int]) -> None:
    draft = "".join(atoms)
    points = sorted({0, len(draft), *(c % (len(draft) + 1) for c in cuts)})
    pieces = [draft[a:b] for a, b in itertools.pairwise(points)]
    assert "".join(pieces) == draft
    assert claims_of(pieces) == claims_of([draft])


def test_a_sentence_is_held_until_what_follows_shows_it_ended() -> None:
    reader = ClaimReader()
    assert reader.feed("Astoria is neutral.") == []
    assert reader.feed(" ") == []
    assert reader.feed("[") == []
    assert reader.feed("1") == []
    assert reader.feed("]") == []
    assert reader.feed(".") == []
    assert reader.feed(" Velmark") == [Claim(1, "Astoria is neutral.", (1,))]
    assert reader.feed(" is not [2].") == []
    assert reader.finish() == [Claim(2, "Velmark is not.", (2,))]
    assert reader.text == "Astoria is neutral. [1]. Velmark is not [2]."


def test_a_decimal_point_is_no_sentence_end_even_when_it_comes_alone() -> None:
    reader = ClaimReader()
    assert reader.feed("Growth was 3.") == []
    assert reader.feed("5% in 2019 [1]. Trade") == [Claim(1, "Growth was 3.5% in 2019.", (1,))]


def test_finish_gives_the_open_claim_once() -> None:
    reader = ClaimReader()
    assert reader.finish() == []
    assert reader.feed("Astoria is neutral [1]. Velmark is") == [
        Claim(1, "Astoria is neutral.", (1,))
    ]
    assert reader.finish() == [Claim(2, "Velmark is", ())]
    assert reader.finish() == []


def test_claims_are_numbered_without_gaps_for_lines_that_hold_no_words() -> None:
    draft = "Astoria is neutral [1].\n\n---\n\n[2]\n\nVelmark is calm [2]."
    assert claims_of([draft]) == [
        Claim(1, "Astoria is neutral.", (1,)),
        Claim(2, "Velmark is calm.", (2,)),
    ]


@pytest.mark.parametrize(
    ("text", "declined"),
    [
        ("NOT_IN_PASSAGES", True),
        ("not_in_passages.", True),
        ("The passages do not answer the question.", True),
        ("The documents don't mention Velmark.", True),
        ("The passage does not say when.", True),
        ("Astoria has four border crossings with Northland.", False),
        ("The passages mention four crossings.", False),
    ],
)
def test_declines(text: str, declined: bool) -> None:
    assert declines(text) is declined


def test_json_claims_reads_sentences_and_merges_their_markers() -> None:
    draft = json.dumps(
        {
            "sentences": [
                {"text": "Astoria has four crossings [2].", "passages": [1, 2], "note": "x"},
                {"text": "Trucks wait two hours.", "passages": [3]},
            ],
            "extra": True,
        }
    )
    assert json_claims(draft) == [
        Claim(1, "Astoria has four crossings.", (2, 1)),
        Claim(2, "Trucks wait two hours.", (3,)),
    ]


@pytest.mark.parametrize("passages", [None, 3, "13", {"1": 2}, 1.5, [True, "1", 1.0, None]])
def test_json_claims_ignores_passage_numbers_of_the_wrong_type(passages: object) -> None:
    draft = json.dumps({"sentences": [{"text": "Astoria is neutral [4].", "passages": passages}]})
    assert json_claims(draft) == [Claim(1, "Astoria is neutral.", (4,))]


def test_json_claims_skips_items_that_are_not_sentences_and_numbers_the_rest() -> None:
    draft = json.dumps(
        {
            "sentences": [
                "Astoria is neutral [1].",
                {"passages": [1]},
                {"text": 5, "passages": [1]},
                {"text": "[2]", "passages": [2]},
                {"text": "Velmark is calm.", "passages": [2]},
            ]
        }
    )
    assert json_claims(draft) == [Claim(1, "Velmark is calm.", (2,))]


@pytest.mark.parametrize(
    "draft",
    [
        "Astoria is neutral [1].",
        '{"sentences": [',
        "[1, 2]",
        '"sentences"',
        '{"answer": "Astoria is neutral."}',
        '{"sentences": {"text": "Astoria is neutral."}}',
        "",
    ],
)
def test_json_claims_is_none_for_a_draft_that_is_not_its_json(draft: str) -> None:
    assert json_claims(draft) is None


def test_json_claims_with_no_sentences_is_an_empty_answer() -> None:
    assert json_claims('{"sentences": []}') == []
