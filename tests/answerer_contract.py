"""The tests every `Answerer` implementation must pass, as tests/embedder_contract.py does for
embedders.

Subclass `AnswererContract` in a test module as `TestSomething` and implement the classmethod
`new_answerer`; pytest then runs every test below against that implementation, over a small
index built with the fake embedder. What the rest of Chancery relies on: an answer is domain
objects (the HTTP layer maps them), every quote stands verbatim on its page at the offsets the
citation gives (clients highlight them), each marker `[n]` in the text points to citation n and
every citation is marked, only the passages given are cited, and an abstention cites nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from index.embedder import Embedder
from index.retrieve import Hit, Retriever
from index.store import Index
from service.answering import Answer, Answerer, Citation
from service.citations import markers
from tests.fakes import FakeEmbedder, build_index

FILES = {
    "energy.txt": "Energy security\n\n"
    "Gas storage must be full before winter begins. The regulator checks the storage level "
    "every month. Northland imports most of its gas from Velmark by pipeline.\f"
    "Electricity\n\n"
    "Wind farms on the coast grow each year. The regulator checks the storage level every "
    "month. Electricity imports come from Astoria when the wind is weak.",
    "border.txt": "Astoria has four border crossings with Northland. Trucks wait two hours at "
    "the busiest crossing. The border police patrol the crossings together since 2019.",
}
ANSWERABLE = (
    "How often does the regulator check the gas storage level?",
    "How many border crossings does Astoria have with Northland?",
    "Where do electricity imports come from?",
)
UNANSWERABLE = ("What does the strategy say about Portugal's navy?",)
QUESTIONS = ANSWERABLE + UNANSWERABLE
K = 4
_LEADING_MARKERS = re.compile(r"(?:\s*\[\d+\])+")


class AnswererContract:
    """Mixed into a `Test...` class that says how to build the implementation under test."""

    @classmethod
    def new_answerer(cls, index: Index, embedder: Embedder) -> Answerer:
        raise NotImplementedError("a contract test class builds its answerer here")

    @pytest.fixture(scope="class")
    @classmethod
    def embedder(cls) -> FakeEmbedder:
        return FakeEmbedder()

    @pytest.fixture(scope="class")
    @classmethod
    def index(
        cls, tmp_path_factory: pytest.TempPathFactory, embedder: FakeEmbedder
    ) -> Iterator[Index]:
        loaded = build_index(Path(tmp_path_factory.mktemp("answerer")), FILES, embedder)
        yield loaded
        loaded.close()

    @pytest.fixture(scope="class")
    @classmethod
    def answered(cls, index: Index, embedder: FakeEmbedder) -> list[tuple[str, list[Hit], Answer]]:
        """Each question, the passages it was given and the answer."""
        answerer = cls.new_answerer(index, embedder)
        retriever = Retriever(index, embedder)
        results = []
        for question in QUESTIONS:
            found = retriever.search(question, K)
            answer = answerer.answer(question, found.hits, query_vector=found.query_vector)
            results.append((question, found.hits, answer))
        return results

    def test_the_answers_are_domain_objects(
        self, answered: list[tuple[str, list[Hit], Answer]]
    ) -> None:
        for _, _, answer in answered:
            assert isinstance(answer, Answer) and not isinstance(answer, BaseModel)
            assert isinstance(answer.text, str) and answer.text.strip()
            assert all(isinstance(c, Citation) for c in answer.citations)
            assert all(isinstance(p, Hit) for p in answer.passages)
            assert all(isinstance(v, float) for v in answer.signals.values())

    def test_some_question_is_answered_with_citations(
        self, answered: list[tuple[str, list[Hit], Answer]]
    ) -> None:
        # Otherwise every check on citations below would pass vacuously.
        assert any(not a.abstained and a.citations for _, _, a in answered)

    def test_every_quote_stands_on_its_page_at_its_offsets(
        self, index: Index, answered: list[tuple[str, list[Hit], Answer]]
    ) -> None:
        files = {d.doc_id: d.file_name for d in index.documents()}
        for _, _, answer in answered:
            for citation in answer.citations:
                page = index.records.page(citation.doc_id, citation.page)
                assert page is not None, citation
                assert page.text[citation.quote_start : citation.quote_end] == citation.quote
                assert citation.quote.strip()
                assert citation.page_label == page.label
                assert citation.doc == files[citation.doc_id]

    def test_every_citation_points_to_the_sentence_it_supports(
        self, answered: list[tuple[str, list[Hit], Answer]]
    ) -> None:
        for question, _, answer in answered:
            for n, citation in enumerate(answer.citations, start=1):
                start, end = citation.answer_start, citation.answer_end
                sentence = answer.text[start:end]
                assert 0 <= start < end <= len(answer.text), (question, citation)
                assert sentence.strip() == sentence and markers(sentence) == [], sentence
                # The markers right after the sentence, if several cite it, include its own.
                after = _LEADING_MARKERS.match(answer.text, end)
                assert after is not None and n in markers(after.group()), (question, answer.text)

    def test_markers_and_citations_match_one_to_one(
        self, answered: list[tuple[str, list[Hit], Answer]]
    ) -> None:
        for question, _, answer in answered:
            expected = set(range(1, len(answer.citations) + 1))
            assert set(markers(answer.text)) == expected, (question, answer.text)

    def test_only_the_passages_given_are_cited_or_returned(
        self, answered: list[tuple[str, list[Hit], Answer]]
    ) -> None:
        for _, given, answer in answered:
            chunks = {hit.chunk.chunk_id for hit in given}
            assert {c.chunk_id for c in answer.citations} <= chunks
            assert {hit.chunk.chunk_id for hit in answer.passages} <= chunks

    def test_an_abstention_cites_nothing_and_keeps_the_passages(
        self, answered: list[tuple[str, list[Hit], Answer]]
    ) -> None:
        abstentions = [(given, a) for q, given, a in answered if q in UNANSWERABLE]
        assert abstentions
        for given, answer in abstentions:
            assert answer.abstained and answer.citations == []
            assert markers(answer.text) == []
            assert answer.passages == given

    def test_no_passages_means_an_abstention_without_citations(
        self, index: Index, embedder: FakeEmbedder
    ) -> None:
        answer = self.new_answerer(index, embedder).answer(ANSWERABLE[0], [])
        assert answer.abstained
        assert answer.citations == [] and answer.passages == []
        assert answer.text.strip() and markers(answer.text) == []
