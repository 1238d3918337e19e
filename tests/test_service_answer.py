"""The extractive answerer: verbatim quotes checked against their pages, and abstention."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from index.retrieve import Retriever
from index.store import ChunkingParameters, Index, load_index
from index.update import update_index
from ingest.chunking import ChunkingConfig, chunk_document
from ingest.loaders import load_document
from ingest.models import Page
from service.answer import ABSTAIN_MESSAGE, AnswerConfig, ExtractiveAnswerer
from service.model import make_embedder
from service.settings import Settings
from tests.conftest import SAMPLES, WhitespaceTokenizer

CONFIG = ChunkingConfig(size=120, overlap=20, max_tokens=200)
CHUNKING = ChunkingParameters(CONFIG.size, CONFIG.overlap, CONFIG.max_tokens)
EMBEDDER = make_embedder(Settings())
DEFAULT = AnswerConfig()


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    root = tmp_path_factory.mktemp("answers")
    documents = []
    for path in sorted(SAMPLES.glob("northland-*")):
        document = load_document(path).document
        documents.append((document, chunk_document(document, WhitespaceTokenizer(), CONFIG)))
    update_index(root, documents, EMBEDDER, CHUNKING)
    loaded = load_index(root, EMBEDDER.identity)
    yield loaded
    loaded.close()


def _ask(index: Index, question: str, config: AnswerConfig = DEFAULT):  # type: ignore[no-untyped-def]
    result = Retriever(index, EMBEDDER).search(question, k=6)
    return ExtractiveAnswerer(index, EMBEDDER, config).answer(question, result)


def test_answer_sentences_carry_markers_and_quotes_stand_on_their_pages(index: Index) -> None:
    answer = _ask(index, "Who is responsible for coordinating the implementation of the strategy?")
    assert not answer.abstained and answer.citations
    assert "Åsa Lindqvist" in answer.text
    assert (answer.citations[0].doc, answer.citations[0].page) == (
        "northland-national-security-strategy.pdf",
        3,
    )
    assert answer.citations[0].page_label == "1"
    for n, citation in enumerate(answer.citations, start=1):
        assert f"[{n}]" in answer.text
        page = index.records.page(citation.doc_id, citation.page)
        assert page is not None and citation.quote in page.text
    markers = {int(m) for m in re.findall(r"\[(\d+)\]", answer.text)}
    assert markers == set(range(1, len(answer.citations) + 1))


def test_a_quote_missing_from_its_page_is_dropped_with_its_sentence(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_page = index.records.page

    def tampered(doc_id: str, number: int) -> Page | None:
        page = real_page(doc_id, number)
        if page is None:
            return None
        return Page(page.number, page.text.replace("Lindqvist", "Lindkvist"), page.label)

    monkeypatch.setattr(index.records, "page", tampered)
    answer = _ask(index, "Who is responsible for coordinating the implementation of the strategy?")
    assert all("Lindqvist" not in c.quote for c in answer.citations)
    assert "Lindqvist" not in answer.text


def test_names_the_documents_never_mention_make_it_abstain(index: Index) -> None:
    answer = _ask(index, "What does the strategy say about Portugal's navy?")
    assert answer.abstained and answer.text == ABSTAIN_MESSAGE
    assert answer.citations == [] and answer.passages
    assert answer.signals["unknown_names"] == 1


def test_low_similarity_makes_it_abstain(index: Index) -> None:
    answer = _ask(index, "gas storage winter", AnswerConfig(min_similarity=0.99))
    assert answer.abstained and answer.passages and not answer.citations


def test_questions_asking_for_a_number_take_sentences_with_one(index: Index) -> None:
    answer = _ask(index, "How long is Northland's land border with Astoria?")
    assert not answer.abstained
    assert all(re.search(r"\d", c.quote) for c in answer.citations)


def test_a_question_about_sources_quotes_the_footnote_whole(index: Index) -> None:
    answer = _ask(index, "Which footnote source gives the Northland Energy Agency figures?")
    assert not answer.abstained
    first = answer.citations[0]
    assert first.quote == "3. Northland Energy Agency, Annual Report 2024, p. 17."
    assert (first.doc, first.page) == ("northland-national-security-strategy.pdf", 5)


def test_other_questions_never_quote_footnotes(index: Index) -> None:
    answer = _ask(index, "What does the Northland Energy Agency report about gas?")
    assert all(not re.match(r"\d+\. ", c.quote) for c in answer.citations)
