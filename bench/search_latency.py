"""Search latency: dense vector search at 10k–1M vectors, BM25 at 10k–100k chunks, query embedding.

Dense: synthetic clustered unit vectors (384 dimensions, like all-MiniLM-L6-v2), indexed with the
spec `choose_spec` picks, timed on 200 single-vector queries and scored for recall@10 against exact
search. The in-run baseline is an exact flat index at the same size. Query vectors are drawn from
the same clusters but are not in the index, as real questions are not.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import random
import string
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field

import benchlib
import faiss
import numpy as np
import numpy.typing as npt

from index.embedder import Vectors, cpu_has_bf16
from index.lexical import LexicalIndex
from index.vectors import VectorIndex, VectorIndexSpec
from service.build import build_embedder
from service.settings import Settings

DIMENSION = 384
CENTERS = 2_000
NOISE = 0.5
"""Per-dimension noise around a N(0, 1) center: same-cluster cosine about 0.8."""
K = 10
LATENCY_QUERIES = 200
RECALL_QUERIES = 100
BLOCK = 50_000
"""Rows generated or scanned at a time, so 1M vectors never need a second full-size buffer."""
SEED = 20_240_601
BM25_VOCABULARY = 20_000
BM25_WORDS_PER_TEXT = 150
BM25_QUERY_WORDS = 6
BM25_DEPTH = 50
EMBED_QUESTIONS = 60


# -- synthetic data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clusters:
    centers: npt.NDArray[np.float32]
    noise: float = NOISE

    @classmethod
    def make(cls, centers: int = CENTERS, noise: float = NOISE, seed: int = SEED) -> Clusters:
        rng = np.random.default_rng(seed)
        return cls(rng.standard_normal((centers, DIMENSION), dtype=np.float32), noise)

    def sample(self, count: int, seed: int) -> Vectors:
        rng = np.random.default_rng(seed)
        out = np.empty((count, DIMENSION), dtype=np.float32)
        for start in range(0, count, BLOCK):
            size = min(BLOCK, count - start)
            labels = rng.integers(0, len(self.centers), size)
            block = self.centers[labels]
            block += self.noise * rng.standard_normal((size, DIMENSION), dtype=np.float32)
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            out[start : start + size] = block
        return out


def exact_top_k(vectors: Vectors, queries: Vectors, k: int = K) -> npt.NDArray[np.int64]:
    """Row numbers of the exact k best inner products, by numpy in blocks (the recall truth)."""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(vectors), BLOCK):
        scores = queries @ vectors[start : start + BLOCK].T
        top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        merged_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, 1)], axis=1)
        merged_rows = np.concatenate([best_rows, top + start], axis=1)
        keep = np.argsort(-merged_scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(merged_scores, keep, 1)
        best_rows = np.take_along_axis(merged_rows, keep, 1)
    return best_rows


def recall_at_k(found: npt.NDArray[np.int64], truth: npt.NDArray[np.int64]) -> float:
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


@contextlib.contextmanager
def faiss_threads(count: int) -> Iterator[None]:
    """FAISS's OpenMP threads for a block; 0 leaves the library default (all cores)."""
    previous = faiss.omp_get_max_threads()
    if count:
        faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def latencies_ms(search: Callable[[Vectors], object], queries: Vectors) -> list[float]:
    """One timed call per query vector, as a service answers one question at a time."""
    search(queries[:1])  # warm-up
    times = []
    for row in range(len(queries)):
        _, seconds = benchlib.timed(functools.partial(search, queries[row : row + 1]))
        times.append(seconds * 1000)
    return times


# -- dense search --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbePoint:
    probes: int
    p50_ms: float
    recall_at_10: float


@dataclass(frozen=True)
class DenseResult:
    size: int
    spec: str
    build_s: float
    rss_before_mb: float
    rss_after_mb: float
    p50_ms: float
    p95_ms: float
    recall_at_10: float
    flat_build_s: float
    flat_p50_ms: float
    flat_p95_ms: float
    speedup_p50: float | None
    """Exact flat p50 over the chosen index's p50."""
    probe_sweep: list[ProbePoint] = field(default_factory=list)


def describe(spec: VectorIndexSpec) -> str:
    if spec.kind == "flat":
        return "flat (exact)"
    return f"ivf {spec.codec} {spec.lists} lists, {spec.probes} probes"


def probe_sweep(
    index: VectorIndex, queries: Vectors, truth: npt.NDArray[np.int64]
) -> list[ProbePoint]:
    """Latency and recall at fewer probes than the spec's, to show what the default buys."""
    # VectorIndex sets nprobe only at build or load; reaching the FAISS object directly avoids
    # rebuilding (minutes at 1M) for a setting that does not change the index contents.
    ivf = faiss.extract_index_ivf(index._index)
    points = []
    for probes in sorted({max(1, index.spec.lists // d) for d in (32, 16, 8, 4)}):
        ivf.nprobe = probes
        times = latencies_ms(lambda q: index.search(q, K), queries)
        _, found = index.search(queries[:RECALL_QUERIES], K)
        points.append(ProbePoint(probes, benchlib.median(times), recall_at_k(found, truth)))
    ivf.nprobe = index.spec.probes
    return points


@dataclass(frozen=True)
class _Timed:
    spec: VectorIndexSpec
    build_s: float
    times_ms: list[float]
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    recall_at_10: float = 1.0
    sweep: list[ProbePoint] = field(default_factory=list)


def _time_chosen(
    vectors: Vectors, queries: Vectors, truth: npt.NDArray[np.int64], search_threads: int
) -> _Timed:
    gc.collect()
    benchlib.release_free_memory()
    rss_before = benchlib.rss_mb()
    index, build_s = benchlib.timed(lambda: VectorIndex.build(vectors))
    rss_after = benchlib.rss_mb()
    with faiss_threads(search_threads):
        times = latencies_ms(lambda q: index.search(q, K), queries)
        _, found = index.search(queries[:RECALL_QUERIES], K)
        sweep = probe_sweep(index, queries, truth) if index.spec.kind == "ivf" else []
    return _Timed(
        index.spec, build_s, times, rss_before, rss_after, recall_at_k(found, truth), sweep
    )


def _time_flat(vectors: Vectors, queries: Vectors, search_threads: int) -> _Timed:
    spec = VectorIndexSpec("flat")
    flat, build_s = benchlib.timed(lambda: VectorIndex.build(vectors, spec))
    with faiss_threads(search_threads):
        times = latencies_ms(lambda q: flat.search(q, K), queries)
    return _Timed(spec, build_s, times)


def measure_dense(
    size: int, clusters: Clusters, queries: Vectors, search_threads: int = 0
) -> DenseResult:
    vectors = clusters.sample(size, seed=SEED + size)
    truth = exact_top_k(vectors, queries[:RECALL_QUERIES])
    chosen = _time_chosen(vectors, queries, truth, search_threads)
    gc.collect()  # the chosen index goes before the flat one is built: one copy at a time
    flat = _time_flat(vectors, queries, search_threads)
    p50, flat_p50 = benchlib.median(chosen.times_ms), benchlib.median(flat.times_ms)
    return DenseResult(
        size=size,
        spec=describe(chosen.spec),
        build_s=chosen.build_s,
        rss_before_mb=chosen.rss_before_mb,
        rss_after_mb=chosen.rss_after_mb,
        p50_ms=p50,
        p95_ms=benchlib.percentile(chosen.times_ms, 95),
        recall_at_10=chosen.recall_at_10,
        flat_build_s=flat.build_s,
        flat_p50_ms=flat_p50,
        flat_p95_ms=benchlib.percentile(flat.times_ms, 95),
        speedup_p50=benchlib.ratio(flat_p50, p50),
        probe_sweep=chosen.sweep,
    )


# -- BM25 ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LexicalResult:
    size: int
    build_s: float
    p50_ms: float
    p95_ms: float
    flat_dense_p50_ms: float
    ratio_to_flat_dense: float | None
    """BM25 p50 over exact flat dense p50 at the same size (above 1: BM25 is slower)."""


def vocabulary(rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < BM25_VOCABULARY:
        words.add("".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 10))))
    return sorted(words)


def synthetic_texts(count: int, words: Sequence[str], seed: int) -> list[str]:
    """Texts with a Zipf-like word distribution, as real prose has (rank r weighs 1/(r + 2.7))."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / (np.arange(len(words)) + 2.7)
    weights /= weights.sum()
    vocab = np.array(words, dtype=object)
    texts: list[str] = []
    for start in range(0, count, 10_000):
        size = min(10_000, count - start)
        picks = rng.choice(len(words), size=(size, BM25_WORDS_PER_TEXT), p=weights)
        texts.extend(" ".join(row) for row in vocab[picks])
    return texts


def _build_lexical(texts: list[str]) -> tuple[LexicalIndex, float]:
    return benchlib.timed(lambda: LexicalIndex.build(texts))


def measure_lexical(size: int, words: Sequence[str], flat_dense_p50: float) -> LexicalResult:
    index, build_s = _build_lexical(synthetic_texts(size, words, seed=SEED + size))
    rng = random.Random(SEED)
    # Mid-frequency words: the very common ones carry little weight, the rarest match nothing.
    queries = [" ".join(rng.sample(words[100:5_000], BM25_QUERY_WORDS)) for _ in range(200)]
    index.search(queries[0], BM25_DEPTH)
    times = []
    for query in queries:
        _, seconds = benchlib.timed(functools.partial(index.search, query, BM25_DEPTH))
        times.append(seconds * 1000)
    p50 = benchlib.median(times)
    return LexicalResult(
        size=size,
        build_s=build_s,
        p50_ms=p50,
        p95_ms=benchlib.percentile(times, 95),
        flat_dense_p50_ms=flat_dense_p50,
        ratio_to_flat_dense=benchlib.ratio(p50, flat_dense_p50),
    )


def flat_dense_p50(size: int, clusters: Clusters, queries: Vectors, search_threads: int) -> float:
    vectors = clusters.sample(size, seed=SEED + size)
    return benchlib.median(_time_flat(vectors, queries, search_threads).times_ms)


# -- query embedding ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbedResult:
    questions: int
    chancery_precision: str
    chancery_median_ms: float
    fp32_median_ms: float
    speedup: float | None


def measure_embedding() -> EmbedResult:
    """Median ms to embed one gold question: Chancery's embedder against the same model in fp32."""
    questions = [q.question for q in benchlib.answerable_gold()[:EMBED_QUESTIONS]]
    chancery = build_embedder(Settings())
    fp32 = build_embedder(Settings(embed_bf16=False))
    times: dict[str, list[float]] = {"chancery": [], "fp32": []}
    for embedder in (chancery, fp32):
        embedder.embed(questions[:2])
    for question in questions:  # interleaved, so both see the same background load
        for name, embedder in (("chancery", chancery), ("fp32", fp32)):
            _, seconds = benchlib.timed(functools.partial(embedder.embed, [question]))
            times[name].append(seconds * 1000)
    chancery_ms, fp32_ms = benchlib.median(times["chancery"]), benchlib.median(times["fp32"])
    return EmbedResult(
        questions=len(questions),
        chancery_precision="bf16" if cpu_has_bf16() else "fp32",
        chancery_median_ms=chancery_ms,
        fp32_median_ms=fp32_ms,
        speedup=benchlib.ratio(fp32_ms, chancery_ms),
    )


# -- report ------------------------------------------------------------------------------------


def sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def print_report(
    dense: list[DenseResult],
    lexical: list[LexicalResult],
    embedding: EmbedResult | None,
    search_threads: int,
    clusters: Clusters,
) -> None:
    print(
        f"## Dense search latency ({LATENCY_QUERIES} single-vector queries, k={K}, "
        f"FAISS search threads {search_threads}; {len(clusters.centers):,} clusters, "
        f"noise {clusters.noise})\n"
    )
    headers = [
        "N",
        "spec",
        "build s",
        "RSS before → after MB",
        "RSS Δ MB",
        "p50 ms",
        "p95 ms",
        f"recall@10 (n={RECALL_QUERIES})",
        "flat p50 ms",
        "flat p95 ms",
        "× flat (p50)",
    ]
    rows = [
        [
            r.size,
            r.spec,
            r.build_s,
            f"{r.rss_before_mb:,.0f} → {r.rss_after_mb:,.0f}",
            r.rss_after_mb - r.rss_before_mb,
            r.p50_ms,
            r.p95_ms,
            f"{r.recall_at_10:.3f}",
            r.flat_p50_ms,
            r.flat_p95_ms,
            r.speedup_p50,
        ]
        for r in dense
    ]
    print(benchlib.markdown_table(headers, rows))
    sweeps = [(r, point) for r in dense for point in r.probe_sweep]
    if sweeps:
        print("\n### IVF probes: latency against recall (same index, nprobe changed)\n")
        print(
            benchlib.markdown_table(
                ["N", "probes", "p50 ms", "recall@10", "× flat (p50)"],
                [
                    [
                        r.size,
                        p.probes,
                        p.p50_ms,
                        f"{p.recall_at_10:.3f}",
                        benchlib.ratio(r.flat_p50_ms, p.p50_ms),
                    ]
                    for r, p in sweeps
                ],
            )
        )
    if lexical:
        print(
            f"\n## BM25 latency (`LexicalIndex.search(q, {BM25_DEPTH})`, 200 queries of "
            f"{BM25_QUERY_WORDS} words; texts of {BM25_WORDS_PER_TEXT} words from "
            f"{BM25_VOCABULARY:,})\n"
        )
        print(
            benchlib.markdown_table(
                ["N", "build s", "p50 ms", "p95 ms", "flat dense p50 ms", "BM25 / flat dense"],
                [
                    [
                        r.size,
                        r.build_s,
                        r.p50_ms,
                        r.p95_ms,
                        r.flat_dense_p50_ms,
                        r.ratio_to_flat_dense,
                    ]
                    for r in lexical
                ],
            )
        )
    if embedding is not None:
        print(
            f"\nQuery embedding (one question, build_embedder, {embedding.chancery_precision}): "
            f"median {embedding.chancery_median_ms:.1f} ms over {embedding.questions} questions; "
            f"same model in fp32 {embedding.fp32_median_ms:.1f} ms "
            f"(× {embedding.speedup:.2f})."
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="dense index sizes")
    parser.add_argument("--centers", type=int, default=CENTERS, help="gaussian cluster centers")
    parser.add_argument(
        "--noise",
        type=float,
        default=NOISE,
        help="per-dimension noise; 0.5 makes recall trivially 1.0, 2.0 is a harder test",
    )
    parser.add_argument("--bm25-sizes", default="10000,100000", help="BM25 corpus sizes")
    parser.add_argument(
        "--search-threads",
        type=int,
        default=0,
        help="FAISS OpenMP threads while searching (0: the library default, as the service "
        "runs); builds always use the default",
    )
    parser.add_argument("--skip-embedding", action="store_true")
    args = parser.parse_args(argv)
    benchlib.quiet_libraries()
    search_threads = args.search_threads or faiss.omp_get_max_threads()

    embedding = None if args.skip_embedding else measure_embedding()
    clusters = Clusters.make(args.centers, args.noise)
    queries = clusters.sample(LATENCY_QUERIES, seed=SEED - 1)
    dense = []
    for size in sizes(args.sizes):
        dense.append(measure_dense(size, clusters, queries, search_threads))
        print(f"dense N={size:,}: {dense[-1].spec}, p50 {dense[-1].p50_ms:.2f} ms", file=sys.stderr)
    flat_p50 = {r.size: r.flat_p50_ms for r in dense}
    words = vocabulary(random.Random(SEED))
    lexical = []
    for size in sizes(args.bm25_sizes):
        baseline = flat_p50.get(size) or flat_dense_p50(size, clusters, queries, search_threads)
        lexical.append(measure_lexical(size, words, baseline))
    print_report(dense, lexical, embedding, search_threads, clusters)
    path = benchlib.write_results(
        "search_latency",
        {
            "dimension": DIMENSION,
            "centers": args.centers,
            "noise": args.noise,
            "faiss_search_threads": search_threads,
            "dense": [asdict(r) for r in dense],
            "bm25": [asdict(r) for r in lexical],
            "query_embedding": asdict(embedding) if embedding else None,
        },
    )
    print(f"\nJSON: {path.relative_to(benchlib.REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
