"""The extractive answerer: verbatim quotes checked against their pages, and abstention."""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pytest

from index.embedder import Embedder, cpu_has_bf16
from index.retrieve import Retriever
from index.store import ChunkingParameters, Index, load_index
from index.update import update_index
from ingest.chunking import ChunkingConfig, chunk_document
from ingest.loaders import load_document
from ingest.models import Page
from service.abstain import ABSTAIN_MESSAGE
from service.answering import Answer
from service.build import build_embedder
from service.extractive import AnswerConfig, ExtractiveAnswerer
from service.settings import Settings
from tests.conftest import SAMPLES, WhitespaceTokenizer
from tests.fakes import FakeEmbedder, build_index

CONFIG = ChunkingConfig(size=120, overlap=20, max_tokens=200)
CHUNKING = ChunkingParameters(CONFIG.size, CONFIG.overlap, CONFIG.max_tokens)
# fp32 on every CPU: the tests below assert exact quotes, and bf16 (where the CPU has it) moves
# cosines by up to 1e-3; that the answers survive it is tested on its own, further down.
EMBEDDER = build_embedder(Settings(embed_bf16=False))
DEFAULT = AnswerConfig()

COORDINATOR = "Who is responsible for coordinating the implementation of the strategy?"
PORTUGAL = "What does the strategy say about Portugal's navy?"
BORDER = "How long is Northland's land border with Astoria?"
FOOTNOTE = "Which footnote source gives the Northland Energy Agency figures?"
GAS = "What does the Northland Energy Agency report about gas?"
GAS_SOURCES = "Where does Northland's gas come from?"
"""Answered in several sentences."""
QUESTIONS = (COORDINATOR, PORTUGAL, "gas storage winter", BORDER, FOOTNOTE, GAS, GAS_SOURCES)


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


def _ask(
    index: Index, question: str, config: AnswerConfig = DEFAULT, embedder: Embedder = EMBEDDER
) -> Answer:
    result = Retriever(index, embedder).search(question, k=6)
    answerer = ExtractiveAnswerer(index, embedder, config)
    return answerer.answer(question, result.hits, query_vector=result.query_vector)


def _quoted(answer: Answer) -> tuple[bool, str, list[tuple[str, int, str]]]:
    return answer.abstained, answer.text, [(c.doc, c.page, c.quote) for c in answer.citations]


def test_answer_sentences_carry_markers_and_quotes_stand_on_their_pages(index: Index) -> None:
    answer = _ask(index, COORDINATOR)
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
    answer = _ask(index, COORDINATOR)
    assert all("Lindqvist" not in c.quote for c in answer.citations)
    assert "Lindqvist" not in answer.text


def test_a_dropped_sentence_takes_no_room_in_the_answer(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _ask(index, GAS_SOURCES)
    assert len(whole.citations) >= 2
    first, kept = whole.citations[0], whole.citations[1:]
    real_page = index.records.page

    def tampered(doc_id: str, number: int) -> Page | None:
        page = real_page(doc_id, number)
        if page is None or (doc_id, number) != (first.doc_id, first.page):
            return page
        return Page(page.number, page.text.replace(first.quote, "(removed)"), page.label)

    monkeypatch.setattr(index.records, "page", tampered)
    answer = _ask(index, GAS_SOURCES)
    assert [c.quote for c in answer.citations] == [c.quote for c in kept]
    assert answer.citations[0].answer_start == 0
    for citation in answer.citations:
        assert answer.text[citation.answer_start : citation.answer_end] == citation.quote


def test_each_citation_points_to_its_sentence_in_the_answer_and_its_quote_on_the_page(
    index: Index,
) -> None:
    checked = 0
    for question in QUESTIONS:
        answer = _ask(index, question)
        end = 0
        for n, citation in enumerate(answer.citations, start=1):
            # The extractive answer's sentence is the quote itself; the marker follows it.
            start = citation.answer_start
            assert answer.text[start : citation.answer_end] == citation.quote, question
            assert answer.text[citation.answer_end :].startswith(f" [{n}]"), question
            assert start == 0 or answer.text[start - 2 : start] == "] ", question
            assert start >= end  # sentences follow one another, each cited once
            end = citation.answer_end
            page = index.records.page(citation.doc_id, citation.page)
            assert page is not None
            assert page.text[citation.quote_start : citation.quote_end] == citation.quote
            checked += 1
    assert checked >= len(QUESTIONS)  # not vacuous: most questions are answered, some twice


def test_names_the_documents_never_mention_make_it_abstain(index: Index) -> None:
    answer = _ask(index, PORTUGAL)
    assert answer.abstained and answer.text == ABSTAIN_MESSAGE
    assert answer.citations == [] and answer.passages
    assert answer.signals["unknown_names"] == 1


def test_low_similarity_makes_it_abstain(index: Index) -> None:
    answer = _ask(index, "gas storage winter", AnswerConfig(min_similarity=0.99))
    assert answer.abstained and answer.passages and not answer.citations


def test_questions_asking_for_a_number_take_sentences_with_one(index: Index) -> None:
    answer = _ask(index, BORDER)
    assert not answer.abstained
    assert all(re.search(r"\d", c.quote) for c in answer.citations)


def test_a_question_about_sources_quotes_the_footnote_whole(index: Index) -> None:
    answer = _ask(index, FOOTNOTE)
    assert not answer.abstained
    first = answer.citations[0]
    assert first.quote == "3. Northland Energy Agency, Annual Report 2024, p. 17."
    assert (first.doc, first.page) == ("northland-national-security-strategy.pdf", 5)


def test_other_questions_never_quote_footnotes(index: Index) -> None:
    answer = _ask(index, GAS)
    assert all(not re.match(r"\d+\. ", c.quote) for c in answer.citations)


@pytest.fixture(scope="module")
def bf16_embedder() -> Embedder:
    if not cpu_has_bf16():
        pytest.skip("this CPU has no native bf16 (avx512_bf16 or amx_bf16) to compare with")
    return build_embedder(Settings(embed_bf16=True))


@pytest.mark.parametrize("question", QUESTIONS)
def test_bf16_and_fp32_arithmetic_give_the_same_answer(
    index: Index, bf16_embedder: Embedder, question: str
) -> None:
    assert _quoted(_ask(index, question, embedder=bf16_embedder)) == _quoted(_ask(index, question))


def _nudged(query: np.ndarray, toward: np.ndarray, amount: float) -> np.ndarray:
    moved = query + amount * toward
    return np.asarray(moved / np.linalg.norm(moved), dtype=np.float32)


@pytest.mark.parametrize("question", QUESTIONS)
def test_nudging_the_query_vector_toward_any_sentence_leaves_the_answer_alone(
    index: Index, question: str
) -> None:
    """The CPU-independent form of the test above: each nudge moves one sentence's cosine by
    up to 5e-4, more than bf16 does. Before cosines were rounded, one nudge swapped the
    footnote and the title line, whose scores were 6e-5 apart. Rounding cannot protect a
    cosine that sits right at a rounding edge; no deciding sentence here does."""
    result = Retriever(index, EMBEDDER).search(question, k=6)
    assert result.query_vector is not None
    answerer = ExtractiveAnswerer(index, EMBEDDER, DEFAULT)
    expected = _quoted(answerer.answer(question, result.hits, query_vector=result.query_vector))
    vectors = index.sentence_vectors()
    rows = [s.row for s in index.records.sentences_of([hit.row for hit in result.hits])]
    assert rows
    for row in rows:
        for amount in (5e-4, -5e-4):
            query = _nudged(result.query_vector, np.asarray(vectors[row]), amount)
            nudged = answerer.answer(question, result.hits, query_vector=query)
            assert _quoted(nudged) == expected, (row, amount)


@pytest.mark.parametrize(
    ("question", "says"),
    [
        ("Шта стратегија каже о морнарици Португала?", "written in Cyrillic script"),
        ("战略对葡萄牙海军说了什么？", "in Chinese (Han script)"),
        ("Šta strategija kaže o mornarici Portugala?", "in Bosnian, Croatian or Serbian"),
        ("Çfarë thotë strategjia për marinën e Portugalisë?", "in Albanian"),
    ],
)
def test_an_abstention_on_a_question_not_in_english_says_so(
    index: Index, question: str, says: str
) -> None:
    answer = _ask(index, question)
    assert answer.abstained and answer.passages
    assert answer.text.startswith("The documents do not answer this question.")
    assert f"The question seems to be {says}; the search model reads English" in answer.text


def test_the_language_note_can_be_turned_off_for_a_multilingual_model(index: Index) -> None:
    config = AnswerConfig(english_only=False)
    answer = _ask(index, "Šta strategija kaže o mornarici Portugala?", config)
    assert answer.abstained and answer.text == ABSTAIN_MESSAGE


@pytest.mark.parametrize("question", [PORTUGAL, "Kosovo Serbia CSTO NATO?", "gas storage winter"])
def test_english_abstentions_carry_no_language_note(index: Index, question: str) -> None:
    answer = _ask(index, question, AnswerConfig(min_similarity=0.99))
    assert answer.abstained and answer.text == ABSTAIN_MESSAGE


# -- entities, overviews, lists and short questions ---------------------------------------------

BUDGETS = (
    "Defence budgets\n\nKosovo will raise its defence budget to 2% of GDP by 2030, as NATO asks. "
    "Serbia buys most of its aircraft abroad. The region's armies train together twice a year."
)
FAKE = FakeEmbedder()


@pytest.fixture(scope="module")
def budgets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    loaded = build_index(tmp_path_factory.mktemp("budgets"), {"budgets.txt": BUDGETS}, FAKE)
    yield loaded
    loaded.close()


def _ask_fake(index: Index, question: str, config: AnswerConfig) -> Answer:
    result = Retriever(index, FAKE).search(question, k=4)
    answerer = ExtractiveAnswerer(index, FAKE, config)
    return answerer.answer(question, result.hits, query_vector=result.query_vector)


def test_a_sentence_about_another_country_does_not_answer(budgets: Index) -> None:
    """The failure this guards against: asked for Serbia's defence budget as a share of GDP,
    the answer quoted Kosovo's 2% target, the closest sentence by its words."""
    config = AnswerConfig(min_similarity=0.4)
    serbia = _ask_fake(
        budgets, "What share of GDP does Serbia spend on its defence budget?", config
    )
    assert serbia.abstained and serbia.citations == []
    kosovo = _ask_fake(
        budgets, "What share of GDP does Kosovo spend on its defence budget?", config
    )
    assert [c.quote for c in kosovo.citations] == [
        "Kosovo will raise its defence budget to 2% of GDP by 2030, as NATO asks."
    ]


def test_a_short_question_may_be_answered_by_a_sentence_holding_its_words(budgets: Index) -> None:
    # A floor no sentence reaches, and a lower one for a question of a word or two.
    config = AnswerConfig(min_similarity=0.99, short_question_similarity=0.1)
    short = _ask_fake(budgets, "What about aircraft?", config)
    assert [c.quote for c in short.citations] == ["Serbia buys most of its aircraft abroad."]
    longer = _ask_fake(budgets, "Where does the Serbian army buy aircraft and tanks?", config)
    assert longer.abstained


def _ask_in(index: Index, question: str, docs: list[str]) -> Answer:
    result = Retriever(index, EMBEDDER).search(question, k=6, documents=docs)
    answerer = ExtractiveAnswerer(index, EMBEDDER, DEFAULT)
    return answerer.answer(question, result.hits, query_vector=result.query_vector)


def test_what_a_document_is_about_is_quoted_from_its_summary(index: Index) -> None:
    answer = _ask_in(index, "What is this document about?", ["northland-energy-brief.md"])
    assert not answer.abstained and answer.signals == {"overview": 1.0}
    assert answer.citations[0].quote == (
        "Northland has moved from heavy dependence on Astorian gas to a diversified energy "
        "system in less than three years."
    )
    assert len(answer.citations) == DEFAULT.max_sentences
    for citation in answer.citations:
        page = index.records.page(citation.doc_id, citation.page)
        assert page is not None
        assert page.text[citation.quote_start : citation.quote_end] == citation.quote


def test_a_question_asking_for_a_list_is_answered_with_the_list(index: Index) -> None:
    answer = _ask(index, "What are the main risks?")
    assert [c.quote for c in answer.citations] == [
        "The Agency sees three main risks for the period up to 2030:",
        "Sabotage of pipelines, cables and substations, as shown by the Borealis-2 incident in "
        "November 2023.",
        "Cyber attacks on the control systems of Nordnett and the distribution companies.",
        "Price shocks on the global LNG market during cold winters.",
    ]
    # One item a line, each cited, its quote the span the citation gives.
    assert answer.text.count("\n- ") == 3
    for n, citation in enumerate(answer.citations, start=1):
        assert answer.text[citation.answer_start : citation.answer_end] == citation.quote
        assert answer.text[citation.answer_end :].startswith(f" [{n}]")


def test_hits_carry_the_printed_label_of_their_first_page(index: Index) -> None:
    hits = Retriever(index, EMBEDDER).search(COORDINATOR, k=8).hits
    for hit in hits:
        page = index.records.page(hit.chunk.doc_id, hit.chunk.page_start)
        assert page is not None and hit.page_label == page.label
    # The strategy's cover pages are unnumbered: printed page 1 is the PDF's page 3.
    assert any(hit.page_label not in (None, str(hit.chunk.page_start)) for hit in hits), hits
