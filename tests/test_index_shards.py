"""A collection split by document into shards and searched by scatter-gather finds what one
index of it finds: the same chunks, in the same order, with the same scores."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from index.embedder import Vectors
from index.modes import Mode
from index.retrieve import Hit, Retriever
from index.shards import ShardSearcher, shard_of, split_index
from index.store import Index, current_version
from tests.fakes import FakeEmbedder, build_index

COMPANIES = ("Acme", "Borealis", "Cinder", "Dunmore", "Elgin", "Fairhaven")
YEARS = (2018, 2022)
_STOPWORDS = ("the", "of", "and", "a", "in", "for", "to")
_WORDS = tuple(
    f"{first}{second}{third}"
    for first in ("ka", "lo", "mi", "ne", "su", "ta", "ve")
    for second in ("ran", "bel", "dor", "gim", "pus", "tek")
    for third in ("a", "o", "is", "um", "et")
)
"""Invented words, so that stemming and stop words leave them alone and ties stay rare."""


def _filing(rng: random.Random) -> str:
    """Three pages of sentences drawn from a skewed vocabulary, with stop words between, so that
    chunks differ in length and BM25 scores rarely tie."""
    pages = []
    for _ in range(3):
        sentences = []
        for _ in range(rng.randint(6, 10)):
            words = [
                rng.choice(_WORDS[: rng.choice((40, 120, len(_WORDS)))])
                if rng.random() < 0.8
                else rng.choice(_STOPWORDS)
                for _ in range(rng.randint(5, 14))
            ]
            sentences.append(" ".join(words).capitalize() + ".")
        pages.append(" ".join(sentences))
    return "\f".join(pages)


def _files() -> dict[str, str]:
    rng = random.Random(20261203)
    return {f"{company}_{year}_filing.txt": _filing(rng) for company in COMPANIES for year in YEARS}


def _questions() -> list[str]:
    rng = random.Random(7)
    plain = [" ".join(rng.sample(_WORDS[:120], rng.randint(2, 5))) for _ in range(10)]
    # Name a company and a year, so that the named-document rankings join the fusion.
    named = [
        f"{company}'s FY{year} " + " ".join(rng.sample(_WORDS[:120], 3))
        for company, year in (("Acme", 2018), ("Cinder", 2022), ("Fairhaven", 2018))
    ]
    return plain + named


class ProjectionEmbedder(FakeEmbedder):
    """Each word a fixed random direction: unlike hashed bags of words, two chunks almost never
    score alike, so the order of one index's rankings is not left to how libraries order ties."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        self.texts_embedded += len(texts)
        dimension = self.identity.dimension
        vectors = np.zeros((len(texts), dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                seed = hashlib.blake2b(word.encode(), digest_size=8).digest()
                rng = np.random.default_rng(int.from_bytes(seed, "little"))
                vectors[row] += rng.standard_normal(dimension, dtype=np.float32)
            vectors[row, 0] += 1e-3
        normalised: Vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        return normalised


QUESTIONS = _questions()
SHARD_COUNTS = (1, 2, 3)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    loaded = build_index(tmp_path_factory.mktemp("whole"), _files(), ProjectionEmbedder())
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def retriever(index: Index) -> Retriever:
    return Retriever(index, ProjectionEmbedder())


@pytest.fixture(scope="module")
def shard_roots(index: Index, tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[Path]]:
    base = tmp_path_factory.mktemp("shards")
    roots = {}
    for count in SHARD_COUNTS:
        roots[count] = [base / f"k{count}" / f"shard-{n}" for n in range(count)]
        split_index(index, roots[count])
    return roots


@pytest.fixture(scope="module", params=SHARD_COUNTS, ids=lambda count: f"k{count}")
def sharded(
    request: pytest.FixtureRequest, shard_roots: dict[int, list[Path]]
) -> Iterator[ShardSearcher]:
    with ShardSearcher(shard_roots[request.param], ProjectionEmbedder()) as searcher:
        yield searcher


def _same_hits(sharded: list[Hit], whole: list[Hit]) -> None:
    assert [h.row for h in sharded] == [h.row for h in whole]
    assert [h.chunk for h in sharded] == [h.chunk for h in whole]
    assert [(h.dense_rank, h.lexical_rank) for h in sharded] == [
        (h.dense_rank, h.lexical_rank) for h in whole
    ]
    np.testing.assert_allclose([h.score for h in sharded], [h.score for h in whole], rtol=1e-6)


def test_documents_are_split_whole_and_every_shard_holds_some(
    index: Index, shard_roots: dict[int, list[Path]]
) -> None:
    doc_ids = sorted(d.doc_id for d in index.documents())
    for count, roots in shard_roots.items():
        held = []
        for number, root in enumerate(roots):
            version = current_version(root)
            assert version is not None
            shard = Index(version, index.manifest)
            own = [d.doc_id for d in shard.documents()]
            shard.close()
            assert own, f"shard {number} of {count} is empty: the test would prove less"
            assert all(shard_of(doc_id, count) == number for doc_id in own)
            held += own
        assert sorted(held) == doc_ids


@pytest.mark.parametrize("distinct_pages", [False, True], ids=["chunks", "pages"])
@pytest.mark.parametrize("mode", [Mode.HYBRID, Mode.DENSE, Mode.BM25], ids=lambda m: m.value)
def test_search_over_shards_equals_one_index(
    retriever: Retriever, sharded: ShardSearcher, mode: Mode, distinct_pages: bool
) -> None:
    for question in QUESTIONS:
        for k in (10, 30):
            whole = retriever.search(question, k=k, mode=mode, distinct_pages=distinct_pages)
            hits = sharded.search(question, k=k, mode=mode, distinct_pages=distinct_pages).hits
            _same_hits(hits, whole.hits)
    named = [q for q in QUESTIONS if retriever.named_documents(q)]
    assert len(named) == 3
    assert all(sharded.named_documents(q) == retriever.named_documents(q) for q in named)


def test_a_document_filter_over_shards_equals_one_index(
    retriever: Retriever, sharded: ShardSearcher
) -> None:
    names = ["Borealis_2022_filing.txt", "Elgin_2018_filing.txt"]
    for question in QUESTIONS[:6]:
        whole = retriever.search(question, k=10, documents=names).hits
        hits = sharded.search(question, k=10, documents=names).hits
        assert {h.file_name for h in hits} <= set(names)
        _same_hits(hits, whole)


def test_shards_scoring_bm25_with_their_own_statistics_rank_differently(
    retriever: Retriever, shard_roots: dict[int, list[Path]]
) -> None:
    """The mutation the design guards against: a shard's own IDF and average length give other
    scores than the collection's, so a gatherer must not merge them as they are."""
    roots = shard_roots[3]
    with ShardSearcher(
        roots, ProjectionEmbedder(), processes=False, collection_statistics=False
    ) as local:
        differing = 0
        for question in QUESTIONS:
            whole = retriever.search(question, k=10).hits
            hits = local.search(question, k=10).hits
            differing += [h.row for h in hits] != [h.row for h in whole]
    assert differing >= len(QUESTIONS) // 2
    with ShardSearcher(roots, ProjectionEmbedder(), processes=False) as collection:
        for question in QUESTIONS:
            _same_hits(
                collection.search(question, k=10).hits, retriever.search(question, k=10).hits
            )


def test_empty_shards_answer_nothing_and_change_nothing(
    index: Index, retriever: Retriever, tmp_path: Path
) -> None:
    """More shards than documents: hashing leaves some empty, and the result stays the same."""
    roots = [tmp_path / f"shard-{n}" for n in range(2 * len(_files()))]
    split_index(index, roots)
    with ShardSearcher(roots, ProjectionEmbedder(), processes=False) as sharded:
        assert 0 in sharded.shard_sizes
        for question in QUESTIONS[:4]:
            _same_hits(sharded.search(question, k=10).hits, retriever.search(question, k=10).hits)
