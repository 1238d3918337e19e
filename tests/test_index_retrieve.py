"""Retrieval over one index version: dense, BM25, their fusion with each chunk's best sentence,
and the filters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import index.retrieve as index_retrieve
from index.modes import Mode
from index.retrieve import NAMED_WEIGHT, RRF_K, SENTENCE_WEIGHT, Hit, Retriever, whole_ties
from index.store import Index, UnknownDocumentError
from index.update import update_index
from tests.fakes import CHUNKING, FakeEmbedder, build_index, fake_document

ENERGY = "Energy Brief.txt"
"""A name that is not its own slug, so its document id differs from it."""
FILES = {
    ENERGY: "Gas storage must be full before winter. The regulator checks gas storage every "
    "month.\fElectricity imports come from Velmark. Wind farms grow each year and store no gas.",
    "council.txt": "The Prime Minister chairs the security council. It meets every quarter.\f"
    "Its secretary prepares the agenda and the minutes of the council.",
    "border.txt": "Astoria has four border crossings with Northland. Trucks wait two hours at the "
    "border. Gas pipelines also cross the border.",
    "cyber.md": "# Cyber\n\nHospitals suffered cyber attacks in 2024. A new agency helps them.",
    # One long page, then a short one: several chunks start on page 1, one running into page 2.
    "gas.txt": " ".join(
        f"Sentence {i} says the gas winter storage reserve holds {i} units." for i in range(12)
    )
    + "\fThe reserve is audited.",
}
QUESTION = "gas storage before winter"
"""Dense and BM25 rank its chunks differently, so fusion is visible in the order."""


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    loaded = build_index(tmp_path_factory.mktemp("retrieve"), FILES, FakeEmbedder())
    yield loaded
    loaded.close()


@pytest.fixture
def embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def retriever(index: Index, embedder: FakeEmbedder) -> Retriever:
    return Retriever(index, embedder)


def _doc_id(index: Index, file_name: str) -> str:
    return next(d.doc_id for d in index.documents() if d.file_name == file_name)


def _rows(hits: list[Hit]) -> list[int]:
    return [hit.row for hit in hits]


def test_dense_hits_are_ranked_by_cosine_to_the_question(
    index: Index, retriever: Retriever, embedder: FakeEmbedder
) -> None:
    result = retriever.search(QUESTION, k=5, mode=Mode.DENSE)
    assert result.query_vector is not None
    stored = index.stored_vectors()
    expected = stored @ result.query_vector[0]
    assert len(result.hits) == 5
    for rank, hit in enumerate(result.hits, start=1):
        assert hit.score == pytest.approx(float(expected[hit.row]), abs=1e-5)
        assert (hit.dense_rank, hit.lexical_rank) == (rank, None)
        # The row joins the vector to its chunk: the chunk's text embeds to the stored vector.
        np.testing.assert_allclose(embedder.embed([hit.chunk.text])[0], stored[hit.row], atol=1e-6)
    # Several gas.txt chunks tie, and FAISS orders ties as it likes: compare the scores.
    best_first = sorted(expected.tolist(), reverse=True)
    assert [hit.score for hit in result.hits] == pytest.approx(best_first[:5], abs=1e-5)
    assert result.hits[0].file_name == ENERGY


def test_bm25_hits_share_a_stem_with_the_question_and_never_embed_it(
    index: Index, retriever: Retriever, embedder: FakeEmbedder
) -> None:
    result = retriever.search("border crossing", k=10, mode=Mode.BM25)
    assert _rows(result.hits) and embedder.calls == 0 and result.query_vector is None
    stems = set(index.lexical.analyze("border crossing"))
    scores = [hit.score for hit in result.hits]
    assert scores == sorted(scores, reverse=True) and min(scores) > 0
    for rank, hit in enumerate(result.hits, start=1):
        assert stems & set(index.lexical.analyze(hit.chunk.text))
        assert (hit.dense_rank, hit.lexical_rank) == (None, rank)
    assert result.hits[0].file_name == "border.txt"
    assert retriever.search("zeppelin quokka", mode=Mode.BM25).hits == []
    assert retriever.search("the and of", mode=Mode.BM25).hits == []  # stop words only


def _best_sentence_ranking(index: Index, rows: set[int], question: str) -> list[int]:
    """The rows ordered by their closest sentence's cosine to the question (ties by row)."""
    query = FakeEmbedder().embed([question])[0]
    vectors = np.asarray(index.sentence_vectors())
    best: dict[int, float] = {}
    for span in index.records.sentences_of(sorted(rows)):
        best[span.chunk_row] = max(best.get(span.chunk_row, -2.0), float(vectors[span.row] @ query))
    return sorted(best, key=lambda row: (-best[row], row))


FUSED_QUESTION = "gas storage checks by the regulator"
"""Dense, BM25 and best-sentence ranking all order its chunks differently (ties by row), so a
fusion that dropped or swapped one of them would show."""


@pytest.mark.parametrize(
    ("question", "named"),
    # Capitalised, "Gas" names gas.txt, and the two rankings within it join the fusion.
    [(FUSED_QUESTION, []), (FUSED_QUESTION.capitalize(), ["gas.txt"])],
)
def test_hybrid_fuses_dense_bm25_and_best_sentence_rankings_by_reciprocal_rank(
    index: Index, retriever: Retriever, question: str, named: list[str]
) -> None:
    everything = index.vectors.size
    dense = retriever.search(question, k=everything, mode=Mode.DENSE).hits
    lexical = retriever.search(question, k=everything, mode=Mode.BM25).hits
    sentences = _best_sentence_ranking(index, set(_rows(dense)) | set(_rows(lexical)), question)
    assert sentences != _rows(dense)  # a chunk's best sentence ranks it otherwise
    assert retriever.named_documents(question) == named
    named_dense = named_lexical = []
    if named:
        named_dense = retriever.search(
            question, k=everything, mode=Mode.DENSE, documents=named
        ).hits
        named_lexical = retriever.search(
            question, k=everything, mode=Mode.BM25, documents=named
        ).hits
    fused: dict[int, float] = {}
    for ranking, weight in (
        (_rows(dense), 1.0),
        (_rows(lexical), 1.0),
        (sentences, SENTENCE_WEIGHT),
        (_rows(named_dense), NAMED_WEIGHT),
        (_rows(named_lexical), NAMED_WEIGHT),
    ):
        for rank, row in enumerate(ranking, start=1):
            fused[row] = fused.get(row, 0.0) + weight / (RRF_K + rank)
    expected = sorted(fused.items(), key=lambda item: (-item[1], item[0]))

    hybrid = retriever.search(question, k=everything, mode=Mode.HYBRID).hits

    assert _rows(hybrid) == [row for row, _ in expected]
    assert [hit.score for hit in hybrid] == pytest.approx([score for _, score in expected])
    # Both rankings contribute, so the fused order is neither of them.
    assert _rows(hybrid) not in (_rows(dense), _rows(lexical))
    dense_rank = {row: rank for rank, row in enumerate(_rows(dense), start=1)}
    lexical_rank = {row: rank for rank, row in enumerate(_rows(lexical), start=1)}
    for hit in hybrid:
        assert (hit.dense_rank, hit.lexical_rank) == (
            dense_rank.get(hit.row),
            lexical_rank.get(hit.row),
        )
    assert any(hit.lexical_rank is None for hit in hybrid)  # dense-only rows are kept


@pytest.mark.parametrize("mode", list(Mode))
def test_documents_are_selected_by_id_or_by_file_name(
    index: Index, retriever: Retriever, mode: Mode
) -> None:
    energy_id = _doc_id(index, ENERGY)
    assert energy_id != ENERGY
    by_name = retriever.search(QUESTION, k=10, mode=mode, documents=[ENERGY]).hits
    by_id = retriever.search(QUESTION, k=10, mode=mode, documents=[energy_id]).hits
    assert by_name and by_name == by_id
    assert {hit.chunk.doc_id for hit in by_name} == {energy_id}

    two = retriever.search(QUESTION, k=10, mode=mode, documents=[energy_id, "gas.txt"]).hits
    assert {hit.file_name for hit in two} == {ENERGY, "gas.txt"}
    unfiltered = retriever.search(QUESTION, k=10, mode=mode).hits
    assert retriever.search(QUESTION, k=10, mode=mode, documents=[]).hits == unfiltered
    assert {hit.file_name for hit in unfiltered} > {ENERGY, "gas.txt"}


def test_equal_fused_scores_are_ordered_by_row(
    index: Index, retriever: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    everything = index.vectors.size
    dense = _rows(retriever.search(QUESTION, k=everything, mode=Mode.DENSE).hits)
    # BM25 ranking the dense order backwards (and no sentence ranking) gives the rows at dense
    # ranks i and n + 1 - i the same fused score, so only the tie rule decides between them;
    # 1/(k + rank) is convex, so the outermost pair scores highest.
    assert everything % 2 == 0
    backwards = [(row, 1.0) for row in reversed(dense)]
    monkeypatch.setattr(index.lexical, "search", lambda *_: backwards)
    monkeypatch.setattr(index_retrieve, "by_best_sentence", lambda *_: [])
    monkeypatch.setattr(retriever, "named_documents", lambda _: [])

    hybrid = retriever.search(QUESTION, k=everything, mode=Mode.HYBRID).hits

    pairs = [sorted((dense[i], dense[-1 - i])) for i in range(everything // 2)]
    assert _rows(hybrid) == [row for pair in pairs for row in pair]


def test_an_unknown_document_is_an_error_naming_the_known_ones(retriever: Retriever) -> None:
    with pytest.raises(UnknownDocumentError, match=r"no document 'nope\.pdf'.*Energy Brief\.txt"):
        retriever.search(QUESTION, documents=[ENERGY, "nope.pdf"])
    with pytest.raises(UnknownDocumentError):
        retriever.resolve_documents(["energy-brief.txt"])  # neither its id nor its name


def test_names_resolve_to_document_ids_in_order(index: Index, retriever: Retriever) -> None:
    energy_id = _doc_id(index, ENERGY)
    assert retriever.resolve_documents(["gas.txt", ENERGY, energy_id]) == [
        "gas.txt",
        energy_id,
        energy_id,
    ]


@pytest.mark.parametrize("mode", list(Mode))
def test_distinct_pages_keep_the_best_chunk_of_each_page(
    index: Index, retriever: Retriever, mode: Mode
) -> None:
    everything = index.vectors.size
    all_hits = retriever.search(QUESTION, k=everything, mode=mode).hits
    pages = [(hit.chunk.doc_id, hit.chunk.page_start) for hit in all_hits]
    assert len(set(pages)) < len(pages)  # gas.txt has several chunks on its page 1

    distinct = retriever.search(QUESTION, k=everything, mode=mode, distinct_pages=True).hits

    first_of_each = [hit for i, hit in enumerate(all_hits) if pages.index(pages[i]) == i]
    assert distinct == first_of_each
    top_two = retriever.search(QUESTION, k=2, mode=mode, distinct_pages=True).hits
    assert top_two == first_of_each[:2]


@pytest.mark.parametrize("mode", list(Mode))
def test_k_bounds_the_number_of_hits(index: Index, retriever: Retriever, mode: Mode) -> None:
    five = retriever.search(QUESTION, k=5, mode=mode).hits
    assert len(five) == 5
    assert retriever.search(QUESTION, k=1, mode=mode).hits == five[:1]
    many = retriever.search(QUESTION, k=1000, mode=mode).hits
    assert len(set(_rows(many))) == len(many) <= index.vectors.size
    if mode is not Mode.BM25:  # BM25 returns only chunks that share a word with the question
        assert len(many) == index.vectors.size
    for nonsense in (0, -1):
        with pytest.raises(ValueError, match="k must be at least 1"):
            retriever.search(QUESTION, k=nonsense, mode=mode)


@pytest.mark.parametrize(
    ("mode", "stages"),
    [
        (Mode.HYBRID, {"embed_ms", "dense_ms", "lexical_ms", "sentences_ms", "fuse_ms"}),
        (Mode.DENSE, {"embed_ms", "dense_ms", "fuse_ms"}),
        (Mode.BM25, {"lexical_ms", "fuse_ms"}),
    ],
)
def test_each_stage_that_ran_reports_its_time(
    retriever: Retriever, mode: Mode, stages: set[str]
) -> None:
    result = retriever.search(QUESTION, k=3, mode=mode)
    assert set(result.timings_ms) == stages
    assert all(isinstance(ms, float) and ms >= 0 for ms in result.timings_ms.values())


def test_hits_carry_their_document_and_heading(index: Index, retriever: Retriever) -> None:
    hit = retriever.search("cyber attacks on hospitals", k=1).hits[0]
    assert (hit.file_name, hit.title, hit.heading) == ("cyber.md", "Cyber", "Cyber")
    assert hit.chunk == index.records.chunks([hit.row])[hit.row]


def test_an_index_with_no_chunks_finds_nothing(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    update_index(tmp_path, [fake_document("border.txt", FILES["border.txt"])], embedder, CHUNKING)
    update_index(tmp_path, [], embedder, CHUNKING, remove=["border.txt"])
    index = build_index(tmp_path, {}, embedder)
    try:
        for mode in Mode:
            assert Retriever(index, embedder).search(QUESTION, mode=mode).hits == []
    finally:
        index.close()


def test_sentence_ranges_are_read_once_and_give_the_same_ranking_as_the_records(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    ranges = index.sentence_ranges()
    assert ranges is not None and index.sentence_ranges() is ranges
    starts, ends = ranges
    for span in index.records.sentences_of(list(range(index.vectors.size))):
        assert starts[span.chunk_row] <= span.row < ends[span.chunk_row]
    query = FakeEmbedder().embed([QUESTION])[0]
    everything = set(range(index.vectors.size))
    fast = index_retrieve.by_best_sentence(index, everything, query)
    monkeypatch.setattr(index, "sentence_ranges", lambda: None)
    assert index_retrieve.by_best_sentence(index, everything, query) == fast
    assert [row for row, _ in fast] == _best_sentence_ranking(index, everything, QUESTION)


FILINGS = {
    "ACME_2018_10K.txt": "Acme spent 12 million on plants. Revenue grew.",
    "ACME_2022_10K.txt": "Capital expenditure rose: the capital expenditure of Acme.",
    "GLOBEX_2022_10K.txt": "Globex sells widgets. Its capital expenditure was small.",
    "BIGCORP_2020_10K.txt": "Big Corp makes bricks.",
}


@pytest.fixture(scope="module")
def filings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    loaded = build_index(tmp_path_factory.mktemp("filings"), FILINGS, FakeEmbedder())
    yield loaded
    loaded.close()


@pytest.mark.parametrize(
    ("question", "named"),
    [
        # A year glued to "FY" or to a quarter still names the filing of that year.
        ("What is the FY2018 capital expenditure for Acme?", ["ACME_2018_10K.txt"]),
        ("Acme's capital expenditure in 2022", ["ACME_2022_10K.txt"]),
        ("What did Acme spend?", ["ACME_2018_10K.txt", "ACME_2022_10K.txt"]),
        # File names run words together; so may the question's neighbouring words.
        ("What does Big Corp make?", ["BIGCORP_2020_10K.txt"]),
        # "10-K" is in every name: it tells none apart.
        ("What does the 10-K say about capital expenditure?", []),
        ("capital expenditure", []),
    ],
)
def test_a_question_names_the_filings_whose_file_name_words_it_uses(
    filings: Index, question: str, named: list[str]
) -> None:
    retriever = Retriever(filings, FakeEmbedder())
    assert retriever.named_documents(question) == retriever.resolve_documents(named)


def test_a_single_document_is_never_named(tmp_path: Path) -> None:
    single = build_index(
        tmp_path, {"ACME_2018_10K.txt": FILINGS["ACME_2018_10K.txt"]}, FakeEmbedder()
    )
    try:
        assert Retriever(single, FakeEmbedder()).named_documents("Acme FY2018") == []
    finally:
        single.close()


def test_hybrid_prefers_the_filing_the_question_names(filings: Index) -> None:
    retriever = Retriever(filings, FakeEmbedder())
    question = "Acme FY2018 capital expenditure"
    # The 2022 filing repeats the question's words; only its name says 2018.
    assert retriever.search(question, k=1).hits[0].file_name == "ACME_2018_10K.txt"
    unnamed = Retriever(filings, FakeEmbedder(), named_weight=0.0)
    assert unnamed.search(question, k=1).hits[0].file_name == "ACME_2022_10K.txt"
    # Dense and BM25 alone, and a search the caller restricts, are left as they were.
    for mode in (Mode.DENSE, Mode.BM25):
        assert retriever.search(question, k=1, mode=mode).hits[0].file_name == "ACME_2022_10K.txt"
    chosen = retriever.search(question, k=5, documents=["ACME_2022_10K.txt"]).hits
    assert {hit.file_name for hit in chosen} == {"ACME_2022_10K.txt"}


def test_whole_ties_fetch_past_a_cut_run_of_equal_scores_and_order_it_by_row() -> None:
    """FAISS returns equal scores in any order and may cut their run anywhere: the ranking kept
    is the same as if it had ordered everything by score, then row."""
    scores = [0.9] + [0.5] * 20 + [0.1] * 3
    # The library's order: the tied rows backwards, so a cut at the depth keeps the highest rows.
    library_order = [0, *range(20, 0, -1), 21, 22, 23]
    asked: list[int] = []

    def search(count: int) -> list[tuple[int, float]]:
        asked.append(count)
        return [(row, scores[row]) for row in library_order[:count]]

    kept = whole_ties(search, 5, len(scores))

    assert kept == [(0, 0.9), (1, 0.5), (2, 0.5), (3, 0.5), (4, 0.5)]
    assert asked[-1] > 21, "the whole run of 0.5 was fetched before it was cut"
    assert whole_ties(search, 3, 2) == [(0, 0.9), (20, 0.5)]  # all there is
