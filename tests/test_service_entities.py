"""Which entities a text names, and whether a sentence is about what a question asks."""

from __future__ import annotations

import pytest

from service.entities import agree, missing, names, same_name


def test_capitalised_words_inside_a_sentence_and_acronyms_are_names() -> None:
    text = "What share of GDP does Serbia spend on defence under NATO and EU rules?"
    # GDP is an acronym of a common noun, not an entity; "What" opens the sentence.
    assert names(text) == {"serbia", "nato", "eu"}


def test_a_word_that_opens_a_sentence_is_a_name_only_where_the_context_says_so() -> None:
    assert names("Kosovo raised its budget.") == frozenset()
    assert names("Kosovo raised its budget.", "Serbia and Kosovo met.") == {"kosovo"}
    # The context writes "Defence" capitalised only where it opens a line: no name.
    assert names("Defence spending rose.", "Defence\nSpending rose.") == frozenset()


def test_question_and_stop_words_and_months_are_no_names() -> None:
    assert names("Tell me: Which report says What?") == frozenset()
    assert names("It was signed in March by the U.S. and the UK.") == {"us", "uk"}


def test_a_heading_in_capitals_is_no_string_of_acronyms() -> None:
    assert names("EXECUTIVE SUMMARY\nThe summary of the report names NATO.") == {"nato"}
    title = "HOW DOES SERBIA VIEW KOSOVO?"
    assert names(title, f"{title}\nThe Kosovo question.") == {"kosovo"}
    assert names("The US EU summit.") == {"us", "eu"}


def test_a_footnote_mark_does_not_hide_that_a_word_opens_a_sentence() -> None:
    assert names("Talks ended.12 Accordingly the Serbian side left.") == {"serbian"}


def test_possessives_and_accents_name_the_same_word() -> None:
    assert names("The view of Serbia's President Vučić differs.") == {
        "serbia",
        "president",
        "vucic",
    }


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Serbia", "Serbian"),
        ("Serbia", "Serbia's"),
        ("Serbs", "Serbia"),
        ("Russia", "Russian"),
        ("Europe", "European"),
        ("Kosovo", "Kosovar"),
        ("China", "Chinese"),
        ("Iran", "Iranians"),
        ("Vucic", "Vučić"),
    ],
)
def test_demonyms_and_inflections_are_the_same_name(a: str, b: str) -> None:
    assert same_name(a, b) and same_name(b, a)


@pytest.mark.parametrize(
    ("a", "b"), [("Serbia", "Kosovo"), ("NATO", "nation"), ("Austria", "Australia")]
)
def test_different_entities_are_not_the_same_name(a: str, b: str) -> None:
    assert not same_name(a, b)


def test_missing_lists_the_names_a_text_never_mentions() -> None:
    text = "The Serbian president met NATO officials in brussels."
    assert missing(["Serbia", "Hungary", "Brussels", "NATO", "Hungary"], text) == ["Hungary"]


def test_a_sentence_about_another_entity_alone_does_not_agree() -> None:
    question = names("What is Serbia's defence budget as a share of GDP?")
    kosovo = names("The Kosovo security strategy aims at 2% of GDP, as NATO asks.")
    serbian = names("The Serbian budget reached 2.1% of GDP, while Kosovo's is lower.")
    assert not agree(question, kosovo)
    assert agree(question, serbian)
    assert agree(question, frozenset())  # a sentence naming nothing may still answer
    assert agree(frozenset(), kosovo)  # nor does a question naming nothing rule any out
