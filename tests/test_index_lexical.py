"""BM25: Snowball stems and English stop words, saved and loaded without pickle."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from index.lexical import LexicalIndex, best_rows

TEXTS = (
    "The regulator checks gas storage every month.",
    "Сербия покупает оружие у России.",
    "The council checked the minutes of the meeting.",
    "Gas, gas and more gas: storage of gas for the winter.",
    "塞尔维亚从俄罗斯购买武器。",
    # Nothing left after analysis: bm25s files these under a blank token, which is also what
    # a word it never saw becomes, so an unknown word must not find them.
    "It is what it is.",
    "!!! ???",
)
QUERIES = ("gas storage", "checking", "оружие", "council meetings", "winter gas")


@pytest.fixture(scope="module")
def lexical() -> LexicalIndex:
    return LexicalIndex.build(TEXTS)


def test_search_results_survive_saving_and_loading(lexical: LexicalIndex, tmp_path: Path) -> None:
    lexical.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25")

    assert loaded.size == lexical.size == len(TEXTS)
    for query in QUERIES:
        assert loaded.search(query, k=10) == lexical.search(query, k=10), query
        assert lexical.search(query, k=10), query
    for stem in ("gas", "check", "council", "zeppelin"):
        assert loaded.document_frequency(stem) == lexical.document_frequency(stem)
        assert loaded.idf(stem) == lexical.idf(stem)


def test_nothing_is_saved_as_pickle(lexical: LexicalIndex, tmp_path: Path) -> None:
    lexical.save(tmp_path)
    files = sorted(tmp_path.iterdir())
    assert files
    for path in files:
        if path.suffix == ".npy":
            np.load(path, allow_pickle=False)  # raises on an object array
        else:
            json.loads(path.read_text(encoding="utf-8"))


def test_inflections_of_a_word_match_each_other(lexical: LexicalIndex) -> None:
    assert lexical.analyze("Checking the CHECKS, checked!") == ["check", "check", "check"]
    found = {row for row, _ in lexical.search("checking", k=10)}
    assert found == {0, 2}  # "checks" and "checked"
    assert {row for row, _ in lexical.search("meetings", k=10)} == {2}


def test_stop_words_and_unknown_words_find_nothing(lexical: LexicalIndex) -> None:
    assert lexical.analyze("the of and for") == []
    assert lexical.search("the of and for", k=10) == []
    assert lexical.search("zeppelin quokka", k=10) == []
    assert lexical.search("", k=10) == []


def test_words_in_other_scripts_are_searchable(lexical: LexicalIndex) -> None:
    assert [row for row, _ in lexical.search("оружие", k=10)] == [1]
    # Chinese has no spaces, so a whole run of it is one word; searching for it must not fail.
    assert [row for row, _ in lexical.search("塞尔维亚从俄罗斯购买武器", k=10)] == [4]


def test_hits_are_best_first_with_positive_scores(lexical: LexicalIndex) -> None:
    hits = lexical.search("gas storage", k=10)
    scores = [score for _, score in hits]
    assert [row for row, _ in hits] == [3, 0]  # four mentions of gas beat one
    assert scores == sorted(scores, reverse=True) and min(scores) > 0
    assert lexical.search("gas storage", k=1) == hits[:1]
    assert lexical.search("gas storage", k=1000) == hits


def test_allowed_rows_restrict_the_search(lexical: LexicalIndex) -> None:
    allowed = np.zeros(len(TEXTS), dtype=np.bool_)
    allowed[0] = True
    assert [row for row, _ in lexical.search("gas storage", k=10, allowed=allowed)] == [0]
    allowed[:] = False
    assert lexical.search("gas storage", k=10, allowed=allowed) == []


def test_rarer_stems_weigh_more(lexical: LexicalIndex) -> None:
    assert lexical.document_frequency("gas") == 2
    assert lexical.document_frequency("council") == 1
    assert lexical.document_frequency("zeppelin") == 0
    assert lexical.idf("zeppelin") > lexical.idf("council") > lexical.idf("gas") > 0
    # BM25's (Lucene's) smoothed idf: log(1 + (N - df + 0.5) / (df + 0.5)).
    assert lexical.idf("gas") == pytest.approx(math.log(1 + (len(TEXTS) - 2 + 0.5) / 2.5))


def test_an_empty_corpus_finds_nothing_before_and_after_saving(tmp_path: Path) -> None:
    empty = LexicalIndex.build([])
    assert empty.size == 0 and empty.search("gas", k=5) == []
    assert empty.document_frequency("gas") == 0
    empty.save(tmp_path)
    loaded = LexicalIndex.load(tmp_path)
    assert loaded.size == 0 and loaded.search("gas", k=5) == []


def _through_bm25s(
    index: LexicalIndex, query: str, k: int, allowed: np.ndarray | None
) -> list[tuple[int, float]]:
    """`BM25.retrieve`'s scores for every row, best first and equal scores by row, cut at k:
    `search` scores as bm25s does and orders as `best_rows` promises."""
    ids = index.query_ids(query)
    if not ids:
        return []
    mask = None if allowed is None else allowed.astype(np.float32)
    rows, scores = index._retriever.retrieve(
        [ids], k=index.size, show_progress=False, weight_mask=mask, n_threads=1
    )
    found = [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if s > 0]
    return sorted(found, key=lambda item: (-item[1], item[0]))[:k]


def test_search_gives_exactly_what_bm25s_retrieve_gives() -> None:
    rng = random.Random(7)
    words = [f"{a}{b}" for a in "bcdfghklmnprst" for b in ("ane", "ork", "ill", "umb", "esk", "ow")]
    # Zipf-like use of words, repeated texts (tied scores) and repeated query words, as in prose.
    weights = [1 / (rank + 1) for rank in range(len(words))]
    texts = [" ".join(rng.choices(words, weights, k=rng.randint(3, 40))) for _ in range(1_500)]
    texts += texts[:100]
    index = LexicalIndex.build(texts)
    allowed = np.array([rng.random() < 0.3 for _ in texts], dtype=np.bool_)
    for _ in range(60):
        query = " ".join(rng.choices(words, weights, k=rng.randint(1, 8)))
        for k in (1, 10, 50):
            assert index.search(query, k) == _through_bm25s(index, query, k, None), query
            assert index.search(query, k, allowed) == _through_bm25s(index, query, k, allowed)


def test_best_rows_keep_the_k_best_with_equal_scores_in_row_order() -> None:
    scores = np.array([0.5, 2.0, 0.0, 1.0, 2.0, 1.0, 1.0, 0.0, 3.0], dtype=np.float32)
    # A run of equal scores (rows 3, 5, 6) is cut at k by row, whatever the partial sort did.
    assert best_rows(scores, 4).tolist() == [8, 1, 4, 3]
    assert best_rows(scores, 5).tolist() == [8, 1, 4, 3, 5]
    # Never a row without a score, however large k is.
    assert best_rows(scores, 20).tolist() == [8, 1, 4, 3, 5, 6, 0]
    assert best_rows(np.zeros(5, dtype=np.float32), 3).tolist() == []
    assert best_rows(scores[::-1].copy(), 2).tolist() == [0, 4]
