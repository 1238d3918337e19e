"""Dense search with FAISS inner product: exact for small corpora, IVF above a threshold.

Vectors are L2-normalised, so inner product is cosine similarity. Below `EXACT_LIMIT` vectors a
flat index is exact and fast enough (a few ms per query at 20k); above it an IVF index with
enough probes keeps recall against exact search at or above 0.98 at k=10 (tested on 100k).
IVF was preferred to HNSW because it trains and adds a million vectors in seconds on two cores,
where HNSW takes many minutes, and the index is rebuilt whenever documents change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

from index.embedder import Vectors

EXACT_LIMIT = 20_000
_TRAIN_SAMPLE_PER_LIST = 64
_SEED = 1234


@dataclass(frozen=True)
class VectorIndexSpec:
    kind: str
    """"flat" or "ivf"."""
    lists: int = 0
    probes: int = 0


def choose_spec(count: int) -> VectorIndexSpec:
    if count < EXACT_LIMIT:
        return VectorIndexSpec("flat")
    lists = int(4 * math.sqrt(count))
    return VectorIndexSpec("ivf", lists=lists, probes=max(32, lists // 4))


class VectorIndex:
    def __init__(self, index: faiss.Index, spec: VectorIndexSpec) -> None:
        self._index = index
        self.spec = spec

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @classmethod
    def build(cls, vectors: Vectors, spec: VectorIndexSpec | None = None) -> VectorIndex:
        count, dimension = vectors.shape
        spec = spec or choose_spec(count)
        if spec.kind == "flat":
            index: faiss.Index = faiss.IndexFlatIP(dimension)
        else:
            quantizer = faiss.IndexFlatIP(dimension)
            ivf = faiss.IndexIVFFlat(quantizer, dimension, spec.lists, faiss.METRIC_INNER_PRODUCT)
            ivf.cp.seed = _SEED
            sample = min(count, spec.lists * _TRAIN_SAMPLE_PER_LIST)
            rows = np.random.default_rng(_SEED).choice(count, size=sample, replace=False)
            ivf.train(vectors[np.sort(rows)])
            ivf.nprobe = spec.probes
            index = ivf
        if count:
            index.add(vectors)
        return cls(index, spec)

    def search(
        self, query: Vectors, k: int, allowed_rows: npt.NDArray[np.int64] | None = None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Scores and row numbers of the k nearest vectors (rows -1 where fewer exist)."""
        k = max(1, min(k, self.size))
        if allowed_rows is None:
            scores, rows = self._index.search(query, k)
        else:
            params = (
                faiss.SearchParametersIVF() if self.spec.kind == "ivf" else faiss.SearchParameters()
            )
            params.sel = faiss.IDSelectorBatch(allowed_rows)
            if isinstance(params, faiss.SearchParametersIVF):
                params.nprobe = self.spec.probes
            scores, rows = self._index.search(query, k, params=params)
        return scores, rows

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, spec: VectorIndexSpec) -> VectorIndex:
        index = faiss.read_index(str(path))
        if spec.kind == "ivf":
            faiss.extract_index_ivf(index).nprobe = spec.probes
        return cls(index, spec)
