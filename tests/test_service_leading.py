"""An answer never opens with a sentence that leans on one the reader has not seen."""

from __future__ import annotations

import pytest

from service.leading import dangles, standalone_first


@pytest.mark.parametrize(
    "sentence",
    [
        "For instance, the 2021 strategy names Russia and China.",
        "However, Serbia remains outside NATO.",
        "In other words, neutrality is a policy, not a treaty.",
        "“Moreover, the army keeps its reserves.”",
        "Therefore the budget grows.",
    ],
)
def test_a_sentence_opening_with_a_connective_dangles(sentence: str) -> None:
    assert dangles(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "Serbia keeps observer status in the CSTO.",
        "The Minister of Defence coordinates the strategy.",
        "Howeverland is not a word, so this sentence stands alone.",
        "Thusly is not a connective either.",
        "Instead-of-war policies are discussed on page 4.",
    ],
)
def test_a_sentence_that_stands_alone_does_not(sentence: str) -> None:
    assert not dangles(sentence)


def test_the_first_standalone_sentence_leads_and_the_rest_keep_their_order() -> None:
    ranked = ["For example, A.", "However, B.", "C stands alone.", "D stands alone."]
    assert standalone_first(ranked, str) == [
        "C stands alone.",
        "For example, A.",
        "However, B.",
        "D stands alone.",
    ]


@pytest.mark.parametrize(
    "ranked",
    [
        [],
        ["A stands alone.", "However, B."],
        ["For example, A.", "However, B."],
    ],
)
def test_the_order_stays_when_it_already_leads_well_or_cannot(ranked: list[str]) -> None:
    assert standalone_first(ranked, str) == ranked
