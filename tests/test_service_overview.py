"""Questions about a whole document, answered from the parts that summarise it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from index.retrieve import Retriever
from index.store import Index
from service.answering import Answer
from service.extractive import AnswerConfig, ExtractiveAnswerer
from service.overview import Focus, asks_overview, section_kind
from tests.fakes import FakeEmbedder, build_index

REVIEW = """# Balkan Security Review

Prepared by the Institute, May 2025.

## Budgets

Kosovo will raise its defence budget to 2% of GDP by 2030. Serbia spends more on arms every
year, mostly on aircraft and air defence bought abroad.

## Executive summary

This report examines how Serbia and Kosovo plan their defence. It finds that both raise their
budgets faster than their neighbours do. The gap between them is widening.

## Recommendations

The Institute recommends a joint crisis cell for the two capitals. It also recommends yearly
drills with the international force.
"""
NOTE = """Situation note, 21 March 2025.

Relations between the two neighbours are at their lowest point since the war ended. Trade fell
by half in three years. Both capitals expect no change before the next elections.
"""
EMBEDDER = FakeEmbedder()
SUMMARY = "This report examines how Serbia and Kosovo plan their defence."


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    files = {"review.md": REVIEW, "note.txt": NOTE}
    loaded = build_index(Path(tmp_path_factory.mktemp("overview")), files, EMBEDDER)
    yield loaded
    loaded.close()


def _ask(index: Index, question: str, docs: list[str] | None = None) -> Answer:
    found = Retriever(index, EMBEDDER).search(question, k=4, documents=docs)
    answerer = ExtractiveAnswerer(index, EMBEDDER, AnswerConfig(min_similarity=0.4))
    return answerer.answer(question, found.hits, query_vector=found.query_vector)


@pytest.mark.parametrize(
    ("question", "focus"),
    [
        ("What is this document about?", Focus.SUMMARY),
        ("What's the report about", Focus.SUMMARY),
        ("Give me an overview", Focus.SUMMARY),
        ("Can you summarize this paper?", Focus.SUMMARY),
        ("Summarize the recommendations", Focus.RECOMMENDATIONS),
        ("What does the report recommend?", Focus.RECOMMENDATIONS),
        ("What are the main findings?", Focus.FINDINGS),
        ("What are the key conclusions of the report?", Focus.CONCLUSIONS),
    ],
)
def test_questions_about_the_whole_document_are_recognised(question: str, focus: Focus) -> None:
    assert asks_overview(question) is focus


@pytest.mark.parametrize(
    "question",
    [
        "What does the report recommend Kosovo do?",
        "What is the main purpose of KCSS?",
        "What are the six major takeaways of the analysis?",
        "What does the strategy say about Portugal's navy?",
    ],
)
def test_questions_about_something_in_it_are_not(question: str) -> None:
    assert asks_overview(question) is None


def test_headings_that_summarise_a_document_are_told_from_others() -> None:
    assert section_kind("2. Executive Summary") == {Focus.SUMMARY}
    assert section_kind("Conclusions and recommendations") == {
        Focus.CONCLUSIONS,
        Focus.RECOMMENDATIONS,
    }
    assert section_kind("1 Introduction") == {"introduction"}
    assert section_kind("An Overview of Serbia's Security Doctrine") == set()


def test_what_a_document_is_about_comes_from_its_executive_summary(index: Index) -> None:
    answer = _ask(index, "What is this document about?", ["review.md"])
    assert not answer.abstained and answer.signals == {"overview": 1.0}
    assert [c.quote for c in answer.citations] == [
        SUMMARY,
        "It finds that both raise their budgets faster than their neighbours do.",
        "The gap between them is widening.",
    ]
    for n, citation in enumerate(answer.citations, start=1):
        page = index.records.page(citation.doc_id, citation.page)
        assert page is not None
        assert page.text[citation.quote_start : citation.quote_end] == citation.quote
        assert answer.text[citation.answer_start : citation.answer_end] == citation.quote
        assert answer.text[citation.answer_end :].startswith(f" [{n}]")
    # The passages shown begin with the one quoted, though retrieval did not find it.
    assert answer.passages[0].chunk.chunk_id == answer.citations[0].chunk_id


def test_recommendations_come_from_their_own_section(index: Index) -> None:
    answer = _ask(index, "Summarize the recommendations", ["review.md"])
    assert [c.quote for c in answer.citations] == [
        "The Institute recommends a joint crisis cell for the two capitals.",
        "It also recommends yearly drills with the international force.",
    ]


def test_a_document_without_such_headings_opens_with_its_first_prose(index: Index) -> None:
    answer = _ask(index, "Give me an overview of the note", ["note.txt"])
    # The dateline is no prose; the first three sentences after it are.
    assert answer.citations[0].quote == (
        "Relations between the two neighbours are at their lowest point since the war ended."
    )
    assert len(answer.citations) == 3 and {c.doc for c in answer.citations} == {"note.txt"}


def test_without_a_filter_the_top_passage_tells_which_document(index: Index) -> None:
    found = Retriever(index, EMBEDDER).search("What is this report about?", k=4)
    answer = _ask(index, "What is this report about?")
    assert {c.doc for c in answer.citations} == {found.hits[0].file_name}
