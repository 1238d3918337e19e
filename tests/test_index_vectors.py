"""Dense search: exact below the threshold, approximate above it with measured recall."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.vectors import EXACT_LIMIT, VectorIndex, VectorIndexSpec, choose_spec

DIMENSION = 384


def _clustered(count: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around 2,000 topic centres, like sentence embeddings of many documents."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((2_000, DIMENSION), dtype=np.float32)
    vectors = centres[rng.integers(0, len(centres), count)]
    vectors += 0.5 * rng.standard_normal((count, DIMENSION), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def test_small_corpora_get_exact_search_and_large_ones_ivf() -> None:
    assert choose_spec(EXACT_LIMIT - 1).kind == "flat"
    large = choose_spec(1_000_000)
    assert large.kind == "ivf" and large.lists == 4_000 and large.probes == 1_000


def test_approximate_search_recall_at_10_is_at_least_098_on_100k_vectors() -> None:
    vectors = _clustered(100_000)
    rng = np.random.default_rng(1)
    queries = vectors[rng.choice(len(vectors), 200, replace=False)]
    queries = queries + 0.3 * rng.standard_normal(queries.shape, dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    approximate = VectorIndex.build(vectors)
    assert approximate.spec.kind == "ivf"
    exact = VectorIndex.build(vectors, VectorIndexSpec("flat"))
    _, truth = exact.search(queries, 10)
    _, found = approximate.search(queries, 10)
    recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])
    assert recall >= 0.98, f"recall@10 {recall:.3f}"


def test_search_within_allowed_rows_and_round_trip(tmp_path: Path) -> None:
    vectors = _clustered(500)
    index = VectorIndex.build(vectors)
    allowed = np.arange(100, 200, dtype=np.int64)
    scores, rows = index.search(vectors[150:151], 5, allowed)
    assert rows[0][0] == 150 and set(rows[0]) <= set(allowed.tolist())
    assert scores[0][0] == pytest.approx(1.0, abs=1e-5)
    index.save(tmp_path / "v.faiss")
    again = VectorIndex.load(tmp_path / "v.faiss", index.spec)
    assert (again.search(vectors[:3], 4)[1] == index.search(vectors[:3], 4)[1]).all()


def test_ivf_filtered_search_keeps_its_probes(tmp_path: Path) -> None:
    vectors = _clustered(EXACT_LIMIT + 1_000, seed=3)
    index = VectorIndex.build(vectors)
    assert index.spec.kind == "ivf"
    allowed = np.arange(0, len(vectors), 2, dtype=np.int64)
    _, rows = index.search(vectors[10:11], 10, allowed)
    assert rows[0][0] == 10 and all(r % 2 == 0 for r in rows[0] if r >= 0)
