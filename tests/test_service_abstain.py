"""The abstention decision and its message, shared by every answerer."""

from __future__ import annotations

import pytest

from index.lexical import LexicalIndex
from index.retrieve import Hit
from ingest.models import Chunk
from service import abstain
from service.terms import term_weights

TEXTS = (
    "Gas storage must be full before winter. The regulator checks it every month.",
    "Astoria has four border crossings with Northland.",
)


@pytest.fixture(scope="module")
def lexical() -> LexicalIndex:
    return LexicalIndex.build(TEXTS)


def _hits() -> list[Hit]:
    return [
        Hit(
            n, Chunk(f"c{n}", "doc.txt", text, 1, 1, ("Heading",), 0, len(text)), "doc.txt", "", 0.1
        )
        for n, text in enumerate(TEXTS)
    ]


def _abstains(similarity: float = 0.7, coverage: float = 0.5, unknown_names: int = 0) -> bool:
    return abstain.should_abstain(
        similarity=similarity,
        coverage=coverage,
        unknown_names=unknown_names,
        min_similarity=0.6,
        min_coverage=0.1,
    )


def test_any_one_signal_is_enough_to_abstain() -> None:
    assert not _abstains()
    assert _abstains(similarity=0.59)
    assert _abstains(coverage=0.09)
    assert _abstains(unknown_names=1)
    assert not _abstains(similarity=0.6, coverage=0.1)  # the thresholds themselves pass


def test_names_no_document_mentions_are_unknown(lexical: LexicalIndex) -> None:
    question = "What does Northland say about Hungary and Portugal?"
    assert abstain.unknown_names(question, lexical) == ["Hungary", "Portugal"]
    # The first word is capitalised as any first word is; question words are no names.
    assert abstain.unknown_names("Hungary borders Astoria?", lexical) == []


def test_coverage_is_the_best_single_passage_share(lexical: LexicalIndex) -> None:
    weights = term_weights("gas storage border crossings", lexical)
    share = abstain.coverage(weights, _hits(), lexical)
    assert 0.0 < share < 1.0
    assert abstain.coverage(weights, _hits()[:1], lexical) <= share
    assert abstain.coverage(term_weights("gas storage", lexical), _hits(), lexical) == 1.0
    assert abstain.coverage({}, _hits(), lexical) == 0.0


def test_an_abstention_cites_nothing_and_keeps_the_passages() -> None:
    hits = _hits()
    answer = abstain.abstention("Who governs Hungary?", hits, {"similarity": 0.2}, True)
    assert answer.abstained and answer.citations == []
    assert answer.passages == hits and answer.signals == {"similarity": 0.2}
    assert answer.text == abstain.ABSTAIN_MESSAGE


def test_the_message_names_a_language_the_model_does_not_read() -> None:
    question = "Šta strategija kaže o mornarici Portugala?"
    said = abstain.message(question, english_only=True)
    assert said.startswith(abstain.NO_ANSWER) and said.endswith(abstain.PASSAGES_BELOW)
    assert "Bosnian, Croatian or Serbian" in said
    assert abstain.message(question, english_only=False) == abstain.ABSTAIN_MESSAGE
    assert abstain.message("Who governs Hungary?", english_only=True) == abstain.ABSTAIN_MESSAGE
