"""Checking a model's claim against the passages it cites: the quote that supports it, or why
none does. Over a small index built with the fake (bag-of-words) embedder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from index.retrieve import Hit
from index.store import Index
from service.claims import ClaimChecker, ClaimRules, Verdict
from service.draft import Claim
from tests.fakes import FakeEmbedder, build_index

FILES = {
    "border.txt": "Astoria has four border crossings with Northland. The border police patrol the "
    "crossings together at night. Trucks wait two hours at the busiest crossing.",
    "trade.txt": "Trade across the border grew by 1,500 trucks a month in 2019. The ministry "
    'calls the border "open and safe for every traveller".',
    "energy.txt": "Northland imports gas from Velmark. Astoria exports wind power to Velmark.",
    "wind.txt": "Along the coast, wind farms grow quickly across the northern plains. The grid "
    "carried 1500 megawatts last winter.",
    "relations.txt": "Trade between Astoria and Northland doubled last year.",
}
MIN_SIMILARITY = 0.7
"""A verbatim sentence scores 1.0 with the fake embedder, the paraphrases here 0.78 to 0.91, and
a sentence on another subject under 0.5."""
SOMEONE_ELSE = "the sentences it rests on are about someone else"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    built = build_index(tmp_path_factory.mktemp("claims"), FILES, FakeEmbedder())
    yield built
    built.close()


@pytest.fixture(scope="module")
def hits(index: Index) -> dict[str, Hit]:
    found = {}
    for document in index.documents():
        [(row, chunk)] = index.records.chunks_of(document.doc_id)
        found[document.file_name] = Hit(row, chunk, document.file_name, document.title, 1.0)
    return found


@pytest.fixture(scope="module")
def checker(index: Index) -> ClaimChecker:
    rules = ClaimRules(min_similarity=MIN_SIMILARITY)
    return ClaimChecker(
        index.records, index.lexical, index.sentence_vectors(), FakeEmbedder(), rules
    )


@pytest.fixture(scope="module")
def passages(hits: dict[str, Hit]) -> list[Hit]:
    """The prompt's passages: [1] border, [2] trade, [3] energy, [4] wind."""
    return [hits[name] for name in ("border.txt", "trade.txt", "energy.txt", "wind.txt")]


def check(
    checker: ClaimChecker,
    passages: list[Hit],
    text: str,
    *cited: int,
    texts: list[str] | None = None,
) -> Verdict:
    read = [hit.chunk.text for hit in passages] if texts is None else texts
    return checker.check(Claim(1, text, cited), passages, read)


def quote_of(verdict: Verdict) -> str:
    assert verdict.reason is None, verdict.reason
    return verdict.supports[0].quote


def test_a_verbatim_claim_stands_on_its_sentence(
    checker: ClaimChecker, passages: list[Hit]
) -> None:
    sentence = "The border police patrol the crossings together at night."
    verdict = check(checker, passages, sentence, 1)
    assert verdict.reason is None
    [support] = verdict.supports
    text = passages[0].chunk.text
    assert (support.passage, support.hit) == (1, passages[0])
    assert (support.start, support.end) == (
        text.index(sentence),
        text.index(sentence) + len(sentence),
    )
    assert support.quote == sentence
    assert support.similarity == pytest.approx(1.0, abs=1e-4)


def test_the_quote_comes_from_the_cited_passage_that_says_it(
    checker: ClaimChecker, passages: list[Hit]
) -> None:
    verdict = check(checker, passages, "Astoria exports wind power to Velmark.", 1, 3)
    assert [s.passage for s in verdict.supports] == [3]
    assert quote_of(verdict) == "Astoria exports wind power to Velmark."


def test_a_claim_on_another_subject_is_rejected(checker: ClaimChecker, passages: list[Hit]) -> None:
    verdict = check(checker, passages, "The weather was mild all spring.", 1)
    assert verdict.supports == []
    assert verdict.reason is not None
    assert verdict.reason.startswith("no sentence of the passages it cites says it (closest 0.")


@pytest.mark.parametrize(
    ("claim", "cited", "quote"),
    [
        # four in the passage, 4 in the claim
        ("Astoria has 4 border crossings with Northland.", 1, "Astoria has four border"),
        # thousands separators either way
        ("Trade across the border grew by 1500 trucks a month in 2019.", 2, "Trade across"),
        ("The grid carried 1,500 megawatts last winter.", 4, "The grid"),
        # "one" as a pronoun
        ("Trucks wait two hours at one of the busiest crossings.", 1, "Trucks wait"),
        # a common word opening a paraphrase, which the passages write lower-case: no name
        ("Wind farms grow quickly across the northern plains.", 4, "Along the coast"),
    ],
)
def test_numbers_and_words_the_passage_states_otherwise_are_accepted(
    checker: ClaimChecker, passages: list[Hit], claim: str, cited: int, quote: str
) -> None:
    assert quote_of(check(checker, passages, claim, cited)).startswith(quote)


@pytest.mark.parametrize(
    ("claim", "cited", "reason"),
    [
        ("Astoria has 5 border crossings with Northland.", 1, "the number 5"),
        ("Astoria has five border crossings with Northland.", 1, "the number five"),
        ("Trade across the border grew by 1,600 trucks a month in 2019.", 2, "the number 1,600"),
        ("Trade across the border grew by 1,500 trucks a month in 2018.", 2, "the number 2018"),
        # the figure is in passage 4, not in the one cited
        ("Trade across the border grew by 1500 megawatts.", 1, "the number 1500"),
    ],
)
def test_a_number_the_cited_passages_lack_is_rejected(
    checker: ClaimChecker, passages: list[Hit], claim: str, cited: int, reason: str
) -> None:
    verdict = check(checker, passages, claim, cited)
    assert verdict.supports == []
    assert verdict.reason == f"{reason} is not in the passages it cites"


def test_a_name_the_cited_passage_lacks_is_rejected(
    checker: ClaimChecker, passages: list[Hit]
) -> None:
    # Velmark is in passage 3, which the claim does not cite.
    verdict = check(checker, passages, "Astoria has four border crossings with Velmark.", 1)
    assert verdict.supports == []
    assert verdict.reason == "it names velmark, which the passages it cites do not"


def test_a_name_opening_the_claim_that_no_passage_uses_is_rejected(
    checker: ClaimChecker, passages: list[Hit]
) -> None:
    verdict = check(checker, passages, "Zembla has four border crossings with Northland.", 1)
    assert verdict.supports == []
    assert verdict.reason == "it names zembla, which the passages it cites do not"


def test_an_invented_quotation_is_rejected(checker: ClaimChecker, passages: list[Hit]) -> None:
    invented = 'The ministry calls the border "open to every traveller at all hours".'
    verdict = check(checker, passages, invented, 2)
    assert verdict.supports == []
    assert verdict.reason == "it quotes words the passages it cites do not contain"
    verbatim = 'The ministry calls the border "open and safe for every traveller".'
    assert quote_of(check(checker, passages, verbatim, 2)) == verbatim


def test_a_claim_that_cites_nothing_is_rejected(checker: ClaimChecker, passages: list[Hit]) -> None:
    verdict = check(checker, passages, "Astoria has four border crossings with Northland.")
    assert verdict.supports == []
    assert verdict.reason == "it cites no passage"


@pytest.mark.parametrize(("cited", "shown"), [((5,), "[5]"), ((0, 9), "[0], [9]")])
def test_a_claim_citing_passages_the_model_was_not_given_is_rejected(
    checker: ClaimChecker, passages: list[Hit], cited: tuple[int, ...], shown: str
) -> None:
    verdict = check(checker, passages, "Astoria has four border crossings with Northland.", *cited)
    assert verdict.supports == []
    assert verdict.reason == f"it cites {shown}, which the model was not given"


def test_a_given_passage_among_wrong_numbers_is_still_checked(
    checker: ClaimChecker, passages: list[Hit]
) -> None:
    verdict = check(checker, passages, "Astoria has four border crossings with Northland.", 9, 1)
    assert quote_of(verdict) == "Astoria has four border crossings with Northland."


def test_a_claim_of_two_words_is_not_a_sentence(checker: ClaimChecker, passages: list[Hit]) -> None:
    assert check(checker, passages, "Four crossings.", 1).reason == "it is not a sentence"


def test_nothing_beyond_what_the_model_read_of_a_passage_is_quoted(
    checker: ClaimChecker, passages: list[Hit]
) -> None:
    # The model read only the first sentence of passages 1 and 2.
    cut = [
        "Astoria has four border crossings with Northland.",
        "Trade across the border grew by 1,500 trucks a month in 2019.",
        *(hit.chunk.text for hit in passages[2:]),
    ]
    patrol = "The border police patrol the crossings together at night."
    assert quote_of(check(checker, passages, patrol, 1)) == patrol
    unread = check(checker, passages, patrol, 1, texts=cut)
    assert unread.supports == []
    assert unread.reason is not None and unread.reason.startswith("no sentence")
    quotation = 'The ministry calls the border "open and safe for every traveller".'
    assert check(checker, passages, quotation, 2, texts=cut).reason == (
        "it quotes words the passages it cites do not contain"
    )
    read = check(
        checker, passages, "Astoria has four border crossings with Northland.", 1, texts=cut
    )
    assert quote_of(read) == cut[0]
    assert read.supports[0].end <= len(cut[0])


def test_a_claim_resting_on_the_sentence_about_its_subject_stands(
    checker: ClaimChecker, hits: dict[str, Hit]
) -> None:
    energy = [hits["energy.txt"]]
    assert quote_of(check(checker, energy, "Northland imports gas from Velmark.", 1)) == (
        "Northland imports gas from Velmark."
    )


def test_a_claim_that_puts_one_name_for_another_in_the_same_passage_is_rejected(
    checker: ClaimChecker, hits: dict[str, Hit]
) -> None:
    energy = [hits["energy.txt"]]
    verdict = check(checker, energy, "Astoria imports gas from Velmark.", 1)
    assert verdict.supports == []
    assert verdict.reason == SOMEONE_ELSE


def test_a_substitution_is_rejected_when_another_passage_shows_both_are_names(
    checker: ClaimChecker, hits: dict[str, Hit]
) -> None:
    # "Trade between Astoria and Northland" writes both names mid-sentence.
    given = [hits["energy.txt"], hits["relations.txt"]]
    verdict = check(checker, given, "Astoria imports gas from Velmark.", 1)
    assert verdict.supports == []
    assert verdict.reason == SOMEONE_ELSE


def test_one_as_a_pronoun_opening_the_claim_is_no_name(
    checker: ClaimChecker, passages: list[Hit]
) -> None:
    verdict = check(
        checker, passages, "One finding: trucks wait two hours at the busiest crossing.", 1
    )
    assert quote_of(verdict) == "Trucks wait two hours at the busiest crossing."
