"""Telling a question not in English apart, without flagging English questions full of names."""

from __future__ import annotations

import json

import pytest

from service.language import Language, english_only_note, foreign_language
from tests.conftest import REPO

GOLD = REPO / "eval" / "gold" / "kcss.jsonl"


@pytest.mark.parametrize(
    ("question", "script", "name"),
    [
        ("Шта стратегија националне безбедности каже о Русији?", "Cyrillic", None),
        ("Какво казва стратегията за Косово?", "Cyrillic", "Bulgarian"),
        ("战略对科索沃说了什么？", "Han", "Chinese"),
        ("Τι λέει η στρατηγική για το Κόσοβο;", "Greek", "Greek"),
        ("ماذا تقول الاستراتيجية عن كوسوفو؟", "Arabic", "Arabic"),
    ],
)
def test_a_non_latin_script_is_never_english(question: str, script: str, name: str) -> None:
    assert foreign_language(question) == Language(script, name)


@pytest.mark.parametrize(
    ("question", "name"),
    [
        (
            "Koja je uloga Rusije u strategiji nacionalne bezbednosti Srbije?",
            "Bosnian, Croatian or Serbian",
        ),
        ("Kako Srbija vidi NATO i Rusiju?", "Bosnian, Croatian or Serbian"),
        ("Çfarë thotë strategjia e Serbisë për Kosovën?", "Albanian"),
        ("Kush e ka shkruar raportin?", "Albanian"),
        ("Was sagt die Strategie über Kosovo?", "German"),
    ],
)
def test_latin_script_questions_in_other_languages_are_named(question: str, name: str) -> None:
    assert foreign_language(question) == Language("Latin", name)


def test_no_english_question_of_the_gold_set_is_flagged() -> None:
    questions = [json.loads(line)["question"] for line in GOLD.read_text().splitlines() if line]
    assert len(questions) > 100
    flagged = [q for q in questions if foreign_language(q) is not None]
    lowered = [q for q in questions if foreign_language(q.lower()) is not None]
    assert flagged == [] and lowered == []


@pytest.mark.parametrize(
    "question",
    [
        "Kosovo Serbia CSTO NATO?",
        "kosovo serbia csto nato",
        "Vučić Brnabić Dačić?",
        "report milorad dodik republika srpska",
        "What does Вучић say about Kosovo?",
        "Why do Chinese and Serbian police patrol together?",
        "gas storage winter",
        "2024?",
        "",
    ],
)
def test_names_keywords_and_english_around_foreign_words_are_not_flagged(question: str) -> None:
    assert foreign_language(question) is None


def test_the_note_names_the_language_and_its_script_and_says_what_to_do() -> None:
    assert english_only_note(Language("Cyrillic", "Serbian")) == (
        "The question seems to be in Serbian (Cyrillic script); the search model reads "
        "English, so ask in English for better results."
    )
    assert Language("Latin", "Albanian").phrase() == "in Albanian"
    assert Language("Greek", "Greek").phrase() == "in Greek"
    assert Language("Cyrillic", None).phrase() == "written in Cyrillic script"
    assert Language("Latin", None).phrase() == "in a language other than English"
