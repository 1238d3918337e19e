"""Dense search with FAISS inner product: exact for small corpora, IVF above a threshold.

Vectors are L2-normalised, so inner product is cosine similarity. Below `EXACT_LIMIT` vectors a
flat index is exact and fast enough (a few ms per query at 20k). Above it an IVF index probes a
few of its lists. Up to `COMPRESS_LIMIT` the lists hold the full vectors (recall against exact
search at or above 0.98 at k=10, tested on 100k). Beyond it full vectors cost too much memory
(1.5 GB at 1M), so the lists hold 8-bit scalar-quantised codes, a quarter of the size: at 1M
vectors of real filing text that measured recall@10 0.97 at 7 ms a query on one thread, in
375 MiB, built in 35 s (bench/scale.py). HNSW was not chosen: its graph build took 25 s for
50k vectors on two cores (many minutes at 1M), and it keeps full vectors unless compressed too.
A trained IVF index also takes new vectors without retraining (`VectorIndex.add`).
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
COMPRESS_LIMIT = 200_000
_TRAIN_SAMPLE_PER_LIST = 64
_PQ_TRAIN_PER_CODE = 64
_SEED = 1234
_CODECS = {"flat": "Flat", "sq8": "SQ8"}
"""IVF list codecs by spec name, as FAISS's index factory spells them; "pq<M>" is also
accepted: product quantisation into M one-byte codes."""


@dataclass(frozen=True)
class VectorIndexSpec:
    kind: str
    """"flat" or "ivf"."""
    lists: int = 0
    probes: int = 0
    codec: str = "flat"
    """How IVF lists store vectors: "flat" (full float32), "sq8" (one byte per dimension) or
    "pq<M>" (M bytes). Manifests written before compression existed lack it and mean "flat"."""
    refine_factor: int = 0
    """Above 0, re-rank k × this many candidates on 8-bit vectors kept beside the codes; for
    "pq" codes, whose own scores are too coarse to order the top ten."""


def choose_spec(count: int) -> VectorIndexSpec:
    if count < EXACT_LIMIT:
        return VectorIndexSpec("flat")
    if count < COMPRESS_LIMIT:
        lists = int(4 * math.sqrt(count))
        return VectorIndexSpec("ivf", lists=lists, probes=max(32, lists // 4))
    lists = int(math.sqrt(count))
    # A sixteenth of the lists: recall@10 0.969 at 1M real-text vectors (a thirty-second gave
    # 0.954, too near the 0.95 floor), 7 ms a query on one thread.
    return VectorIndexSpec("ivf", lists=lists, probes=max(16, lists // 16), codec="sq8")


def _factory(spec: VectorIndexSpec) -> str:
    codec = _CODECS.get(spec.codec)
    if codec is None:
        if not (spec.codec.startswith("pq") and spec.codec[2:].isdigit()):
            raise ValueError(f"unknown vector codec {spec.codec!r}: flat, sq8 or pq<M>")
        codec = spec.codec.upper() + "np"  # no polysemous training: minutes, never used here
    refine = ",Refine(SQ8)" if spec.refine_factor > 0 else ""
    return f"IVF{spec.lists},{codec}{refine}"


def _apply_search_settings(index: faiss.Index, spec: VectorIndexSpec) -> None:
    """nprobe and the re-rank depth: search settings, which the spec carries."""
    if spec.kind != "ivf":
        return
    faiss.extract_index_ivf(index).nprobe = spec.probes
    refine = faiss.downcast_index(index)
    if isinstance(refine, faiss.IndexRefine):
        refine.k_factor = spec.refine_factor


class VectorIndex:
    def __init__(self, index: faiss.Index, spec: VectorIndexSpec) -> None:
        """Wraps a built FAISS index and sets its search settings from `spec` (these are not
        in the index file, and a wrapper over the same index with other settings changes them
        for both)."""
        _apply_search_settings(index, spec)
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
            index = faiss.index_factory(dimension, _factory(spec), faiss.METRIC_INNER_PRODUCT)
            ivf = faiss.extract_index_ivf(index)
            ivf.cp.seed = _SEED
            if isinstance(ivf, faiss.IndexIVFPQ):
                # 64 points per code are plenty for codebooks of 256 codes; FAISS's default
                # of 256 made training take minutes on two cores.
                ivf.pq.cp.max_points_per_centroid = _PQ_TRAIN_PER_CODE
            sample = min(count, spec.lists * _TRAIN_SAMPLE_PER_LIST)
            rows = np.random.default_rng(_SEED).choice(count, size=sample, replace=False)
            index.train(vectors[np.sort(rows)])
        if count:
            index.add(vectors)
        return cls(index, spec)

    def add(self, vectors: Vectors) -> None:
        """Append rows after the existing ones (row numbers continue from `size`), without
        retraining: IVF keeps its lists' centroids and codebooks, which stay good while the
        new vectors resemble the ones it was trained on; rebuild when the corpus has changed
        a lot. A flat index stays flat whatever its size."""
        if len(vectors):
            self._index.add(vectors)

    def search(
        self, query: Vectors, k: int, allowed_rows: npt.NDArray[np.int64] | None = None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Scores and row numbers of the k nearest vectors (rows -1 where fewer exist)."""
        k = max(1, min(k, self.size))
        if allowed_rows is None:
            scores, rows = self._index.search(query, k)
        elif self.spec.kind != "ivf":
            params = faiss.SearchParameters()
            params.sel = faiss.IDSelectorBatch(allowed_rows)
            scores, rows = self._index.search(query, k, params=params)
        else:
            # Search parameters replace the index's own settings, so the probes and the
            # re-rank depth are set again beside the filter.
            ivf = faiss.SearchParametersIVF()
            ivf.sel = faiss.IDSelectorBatch(allowed_rows)
            ivf.nprobe = self.spec.probes
            params = ivf
            if self.spec.refine_factor > 0:
                params = faiss.IndexRefineSearchParameters()
                params.k_factor = self.spec.refine_factor
                params.base_index_params = ivf  # FAISS does not own it: `ivf` stays referenced
            scores, rows = self._index.search(query, k, params=params)
        return scores, rows

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, spec: VectorIndexSpec) -> VectorIndex:
        return cls(faiss.read_index(str(path)), spec)
