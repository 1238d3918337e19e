"""Scale on one machine: dense and BM25 search over 1M chunks recombined from real filing sentences.

Data. The sentences of the twelve FinanceBench filings (the project's own PDF loader and sentence
splitter) are embedded once with the project's embedder and cached under var/bench-cache/, keyed
by the files' hashes and the model's identity. A "chunk" is 3–6 of those sentences from one filing
(a consecutive run, topped up with sentences from elsewhere in the same filing so that a million
chunks are not a few hundred thousand repeated); its text is the sentences joined, and its vector
is the normalised mean of their sentence vectors. Chunk vectors are POOLED from real sentence
vectors, not re-encoded (a million encodes would take hours on this CPU); a sample measures how
close pooled vectors are to re-encoded ones.

Queries are never vectors from the index: the FinanceBench questions, plus sentences held out of
every chunk. Recall@10 is scored against exact (flat) search over the same vectors, in the same
run; latency is one query per call on one FAISS thread, as one request is served.
"""

from __future__ import annotations

import argparse
import functools
import gc
import hashlib
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import benchlib
import faiss
import numpy as np
import numpy.typing as npt
from search_latency import faiss_threads, recall_at_k

from index.embedder import Embedder, Vectors
from index.lexical import LexicalIndex
from index.vectors import VectorIndex, VectorIndexSpec, choose_spec
from ingest.loaders import load_document
from ingest.sentences import sentence_spans
from service.build import build_embedder
from service.settings import Settings

FILINGS = benchlib.REPO.parent / "shared" / "financebench-dev"
CACHE = benchlib.REPO / "var" / "bench-cache"
EXTRACTION_VERSION = 1
"""Part of the cache key: bump it when the sentence filter below changes."""
MIN_WORDS = 5
"""Shorter "sentences" in a filing are mostly table cells and headings, not prose."""
EMBED_BATCH = 1_024
SEED = 20_261_203
HELD_OUT = 366
"""Sentences kept out of every chunk, to serve as queries with the FinanceBench questions."""
K = 10
MIN_SENTENCES = 4
MAX_SENTENCES = 7
"""4–7 filing sentences make about the 200 tokens of the project's default chunk."""
BLOCK = 50_000
LATENCY_QUERIES = 200
BM25_DEPTH = 50
PQ_BYTES = 48
"""48 one-byte codes for 384 dimensions: a sub-vector of 8 dimensions per byte."""
ADDED = 1_000
"""Chunks made beyond the index size, to add to the built index afterwards."""
SENTENCES_PER_CHUNK = 10
"""An estimate for index/store.py's per-sentence vectors: a sentence there ends at every line
break, so table rows count as sentences, and a 200-token chunk of a filing holds about ten."""

T = TypeVar("T")
Members = npt.NDArray[np.int32]
"""Sentence numbers of each chunk, one row per chunk, -1 past its last sentence."""


# -- real sentences, embedded once -----------------------------------------------------------------


@dataclass(frozen=True)
class Sentences:
    texts: list[str]
    filing: npt.NDArray[np.int32]
    """Which filing each sentence comes from (index into the sorted PDF names)."""
    vectors: Vectors
    filings: list[str]


def _pdfs() -> list[Path]:
    return sorted((FILINGS / "pdfs").glob("*.pdf"))


def _cache_key(pdfs: Sequence[Path], model: str) -> str:
    digest = hashlib.sha256(f"v{EXTRACTION_VERSION} {model}".encode())
    for pdf in pdfs:
        digest.update(pdf.name.encode())
        digest.update(hashlib.sha256(pdf.read_bytes()).digest())
    return digest.hexdigest()[:16]


def _extract(pdfs: Sequence[Path]) -> tuple[list[str], list[int]]:
    """Unique prose sentences of each filing, in reading order."""
    seen: set[str] = set()
    texts: list[str] = []
    filing: list[int] = []
    for number, pdf in enumerate(pdfs):
        document = load_document(pdf).document
        for page in document.pages:
            for start, end in sentence_spans(page.text):
                sentence = " ".join(page.text[start:end].split())
                if len(sentence.split()) < MIN_WORDS or sentence in seen:
                    continue
                seen.add(sentence)
                texts.append(sentence)
                filing.append(number)
        print(f"{pdf.name}: {len(texts):,} sentences so far", file=sys.stderr, flush=True)
    return texts, filing


def load_sentences() -> Sentences:
    """The filings' sentences and their vectors, from the cache or embedded now (minutes)."""
    pdfs = _pdfs()
    embedder = build_embedder(Settings())
    identity = embedder.identity
    key = _cache_key(pdfs, f"{identity.model_id} {identity.weights_sha256}")
    folder = CACHE / f"scale-sentences-{key}"
    names = [pdf.name for pdf in pdfs]
    if (folder / "vectors.npy").is_file():
        meta = json.loads((folder / "sentences.json").read_text(encoding="utf-8"))
        vectors = np.load(folder / "vectors.npy", allow_pickle=False)
        return Sentences(meta["texts"], np.asarray(meta["filing"], np.int32), vectors, names)
    texts, filing = _extract(pdfs)
    embedder.load()
    parts = []
    for start in range(0, len(texts), EMBED_BATCH):
        parts.append(embedder.embed(texts[start : start + EMBED_BATCH]))
        print(f"embedded {start + len(parts[-1]):,}/{len(texts):,}", file=sys.stderr, flush=True)
    vectors = np.concatenate(parts).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    # Written to a temporary name first: an interrupted run must not leave a half cache behind.
    np.save(folder / "vectors.tmp.npy", vectors, allow_pickle=False)
    (folder / "sentences.json").write_text(
        json.dumps({"files": names, "texts": texts, "filing": filing}), encoding="utf-8"
    )
    (folder / "vectors.tmp.npy").rename(folder / "vectors.npy")
    return Sentences(texts, np.asarray(filing, np.int32), vectors, names)


# -- chunks recombined from the sentences ----------------------------------------------------------


def hold_out(sentences: Sentences, count: int = HELD_OUT) -> npt.NDArray[np.int64]:
    """Sentence numbers that no chunk uses: queries the index has never seen."""
    rng = np.random.default_rng(SEED)
    return np.sort(rng.choice(len(sentences.texts), size=count, replace=False))


def recombine(sentences: Sentences, held_out: npt.NDArray[np.int64], count: int) -> Members:
    """`count` chunks of MIN_SENTENCES–MAX_SENTENCES sentences of one filing each: a consecutive
    run of at least one sentence, the rest drawn from anywhere in the same filing."""
    rng = np.random.default_rng(SEED + count)
    usable = np.ones(len(sentences.texts), dtype=np.bool_)
    usable[held_out] = False
    per_filing = [
        np.flatnonzero(usable & (sentences.filing == f)) for f in range(len(sentences.filings))
    ]
    weights = np.array([len(ids) for ids in per_filing], dtype=np.float64)
    filing = rng.choice(len(per_filing), size=count, p=weights / weights.sum())
    lengths = rng.integers(MIN_SENTENCES, MAX_SENTENCES + 1, size=count)
    runs = rng.integers(1, lengths + 1)
    members = np.full((count, MAX_SENTENCES), -1, dtype=np.int32)
    for number, ids in enumerate(per_filing):
        rows = np.flatnonzero(filing == number)
        starts = rng.integers(0, len(ids) - MAX_SENTENCES, size=len(rows))
        for column in range(MAX_SENTENCES):
            consecutive = ids[starts + column]
            anywhere = ids[rng.integers(0, len(ids), size=len(rows))]
            picked = np.where(column < runs[rows], consecutive, anywhere)
            members[rows, column] = np.where(column < lengths[rows], picked, -1)
    return members


def pooled_vectors(sentence_vectors: Vectors, members: Members) -> Vectors:
    """Each chunk's vector: the normalised mean of its sentences' vectors (not re-encoded)."""
    out = np.empty((len(members), sentence_vectors.shape[1]), dtype=np.float32)
    for start in range(0, len(members), BLOCK):
        block = members[start : start + BLOCK]
        total = np.zeros((len(block), sentence_vectors.shape[1]), dtype=np.float32)
        for column in range(block.shape[1]):
            present = block[:, column] >= 0
            total[present] += sentence_vectors[block[present, column]]
        total /= np.linalg.norm(total, axis=1, keepdims=True)
        out[start : start + len(block)] = total
    return out


def chunk_texts(texts: Sequence[str], members: Members) -> list[str]:
    return [" ".join(texts[m] for m in row if m >= 0) for row in members.tolist()]


@dataclass(frozen=True)
class PoolingCheck:
    chunks: int
    cosine_mean: float
    cosine_p5: float
    """5th percentile of cosine(pooled, re-encoded): the worst chunks."""
    self_retrieval: float
    """Share of re-encoded chunk vectors whose nearest pooled one (in the sample) is their own."""
    top10_overlap: float
    """Mean overlap of the top 10 over the sample for the queries, pooled against re-encoded."""


def check_pooling(
    sentences: Sentences, members: Members, queries: Vectors, embedder: Embedder, count: int
) -> PoolingCheck:
    """How far pooled chunk vectors are from encoding the chunk text, on a sample."""
    rows = np.random.default_rng(SEED).choice(len(members), size=count, replace=False)
    sample = members[rows]
    pooled = pooled_vectors(sentences.vectors, sample)
    encoded = embedder.embed(chunk_texts(sentences.texts, sample))
    cosine = np.sum(pooled * encoded, axis=1)
    nearest = np.argmax(encoded @ pooled.T, axis=1)
    top_pooled = np.argsort(-(queries @ pooled.T), axis=1)[:, :K]
    top_encoded = np.argsort(-(queries @ encoded.T), axis=1)[:, :K]
    return PoolingCheck(
        chunks=count,
        cosine_mean=float(cosine.mean()),
        cosine_p5=float(np.percentile(cosine, 5)),
        self_retrieval=float(np.mean(nearest == np.arange(count))),
        top10_overlap=recall_at_k(top_pooled, top_encoded),
    )


# -- queries ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Queries:
    texts: list[str]
    vectors: Vectors
    questions: int
    """The first `questions` are FinanceBench questions; the rest are held-out sentences."""


def load_queries(
    sentences: Sentences, held_out: npt.NDArray[np.int64], embedder: Embedder
) -> Queries:
    lines = (FILINGS / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line)["question"] for line in lines if line.strip()]
    held = [sentences.texts[i] for i in held_out]
    vectors = np.concatenate([embedder.embed(questions), sentences.vectors[held_out]])
    return Queries(questions + held, np.ascontiguousarray(vectors), len(questions))


# -- measuring -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timings:
    wall_ms: list[float]
    cpu_ms: list[float]
    """Process CPU time per call: on a shared, busy machine the wall time also counts the time
    other processes held the cores, and CPU time is what the call would take alone."""

    @property
    def p50(self) -> float:
        return benchlib.median(self.wall_ms)

    @property
    def p95(self) -> float:
        return benchlib.percentile(self.wall_ms, 95)

    @property
    def cpu_p50(self) -> float:
        return benchlib.median(self.cpu_ms)


def timings(search: Callable[[T], object], items: Sequence[T]) -> Timings:
    search(items[0])  # warm-up
    wall, cpu = [], []
    for item in items:
        started, started_cpu = time.perf_counter(), time.process_time()
        search(item)
        cpu.append((time.process_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    return Timings(wall, cpu)


def interleaved(
    first: Callable[[T], object], second: Callable[[T], object], items: Sequence[T]
) -> tuple[Timings, Timings]:
    """Two ways of doing the same calls, alternated item by item so both meet the same load."""
    first(items[0])  # warm-up
    second(items[0])
    times: tuple[Timings, Timings] = (Timings([], []), Timings([], []))
    for item in items:
        for search, into in ((first, times[0]), (second, times[1])):
            started, started_cpu = time.perf_counter(), time.process_time()
            search(item)
            into.cpu_ms.append((time.process_time() - started_cpu) * 1000)
            into.wall_ms.append((time.perf_counter() - started) * 1000)
    return times


def latencies_ms(search: Callable[[Vectors], object], queries: Vectors) -> Timings:
    """One timed call per query on one FAISS thread, as one request is served."""
    with faiss_threads(1):
        return timings(search, [queries[row : row + 1] for row in range(len(queries))])


def file_mb(path: Path) -> float:
    return path.stat().st_size / 2**20


@dataclass(frozen=True)
class DenseRow:
    index: str
    setting: str
    build_s: float | None
    index_mb: float
    rss_delta_mb: float
    p50_ms: float
    p95_ms: float
    cpu_p50_ms: float
    recall_at_10: float


@dataclass(frozen=True)
class AddResult:
    spec: str
    base_size: int
    added: int
    add_s: float
    added_found_first: float
    """Share of the added vectors that find themselves first: they are searchable at once."""
    recall_before: float
    recall_after: float
    """Recall@10 of the original queries against exact search over the grown set."""


def describe(spec: VectorIndexSpec) -> str:
    if spec.kind == "flat":
        return "flat (exact)"
    refine = " + SQ8 re-rank" if spec.refine_factor else ""
    return f"IVF{spec.lists} {spec.codec.upper()}{refine}"


def settings_for(spec: VectorIndexSpec) -> list[VectorIndexSpec]:
    """The search settings to sweep on one built index: probes, and the re-rank depth."""
    probes = [max(1, spec.lists // d) for d in (64, 32, 16, 8)]
    if not spec.refine_factor:
        return [replace(spec, probes=p) for p in probes]
    return [replace(spec, probes=p, refine_factor=f) for p in probes[1:] for f in (2, 4, 8)]


def use_settings(index: VectorIndex, spec: VectorIndexSpec) -> VectorIndex:
    """The same FAISS index searched with other probes or re-rank depth: rebuilding it (minutes
    at 1M) for a setting that does not change its contents would waste the run."""
    return VectorIndex(index._index, spec)


def sweep(
    index: VectorIndex, build_s: float | None, rss_delta: float, index_mb: float, data: Bench
) -> list[DenseRow]:
    rows = []
    specs = settings_for(index.spec) if index.spec.kind == "ivf" else [index.spec]
    for spec in specs:
        tuned = use_settings(index, spec) if spec.kind == "ivf" else index
        times = latencies_ms(functools.partial(tuned.search, k=K), data.latency_queries)
        _, found = tuned.search(data.queries.vectors, K)
        setting = "exact" if spec.kind == "flat" else f"probes {spec.probes}"
        if spec.refine_factor:
            setting += f", re-rank {spec.refine_factor}×{K}"
        rows.append(
            DenseRow(
                describe(spec),
                setting,
                build_s,
                index_mb,
                rss_delta,
                times.p50,
                times.p95,
                times.cpu_p50,
                recall_at_k(found, data.truth),
            )
        )
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
        build_s = None
    return rows


@dataclass
class Bench:
    vectors: Vectors
    queries: Queries
    latency_queries: Vectors
    truth: npt.NDArray[np.int64]
    scratch: Path


def exact_baseline(
    vectors: Vectors, queries: Queries, scratch: Path, flat_queries: int
) -> tuple[Bench, list[DenseRow]]:
    gc.collect()
    benchlib.release_free_memory()
    before = benchlib.rss_mb()
    flat, build_s = benchlib.timed(lambda: VectorIndex.build(vectors, VectorIndexSpec("flat")))
    rss_delta = benchlib.rss_mb() - before
    _, truth = flat.search(queries.vectors, K)
    latency_queries = queries.vectors[:: max(1, len(queries.vectors) // LATENCY_QUERIES)]
    data = Bench(vectors, queries, latency_queries[:flat_queries], truth, scratch)
    mb = vectors.nbytes / 2**20
    rows = sweep(flat, build_s, rss_delta, mb, data)
    data.latency_queries = latency_queries[:LATENCY_QUERIES]
    return data, rows


def measure_spec(spec: VectorIndexSpec, data: Bench) -> tuple[VectorIndex, list[DenseRow]]:
    gc.collect()
    benchlib.release_free_memory()
    before = benchlib.rss_mb()
    index, build_s = benchlib.timed(lambda: VectorIndex.build(data.vectors, spec))
    rss_delta = benchlib.rss_mb() - before
    path = data.scratch / "candidate.faiss"
    index.save(path)
    print(f"{describe(spec)}: built in {build_s:.0f} s", file=sys.stderr, flush=True)
    return index, sweep(index, build_s, rss_delta, file_mb(path), data)


def pq_alone(index: VectorIndex, data: Bench) -> list[DenseRow]:
    """The PQ index inside a re-ranked one, searched on its own codes, then re-ranked on the
    float32 vectors the store keeps on disk instead of on 8-bit copies in memory."""
    refine = faiss.downcast_index(index._index)
    assert isinstance(refine, faiss.IndexRefine)
    base = VectorIndex(refine.base_index, replace(index.spec, refine_factor=0))
    mb = faiss.serialize_index(refine.base_index).nbytes / 2**20
    rows = sweep(base, None, 0.0, mb, data)
    return rows + rerank_on_stored(base, data, (2, 4, 8))


def rerank_on_stored(index: VectorIndex, data: Bench, factors: Sequence[int]) -> list[DenseRow]:
    """IVF-PQ candidates re-ranked on the float32 vectors the store already keeps on disk
    (vectors.npy, memory-mapped): no second copy of the vectors in memory."""
    path = data.scratch / "vectors.npy"
    np.save(path, data.vectors, allow_pickle=False)
    stored: Vectors = np.load(path, mmap_mode="r", allow_pickle=False)
    rows = []
    for factor in factors:

        def search(query: Vectors, factor: int = factor) -> npt.NDArray[np.int64]:
            _, candidates = index.search(query, K * factor)
            out = np.empty((len(query), K), dtype=np.int64)
            for number, row in enumerate(candidates):
                row = np.sort(row[row >= 0])
                scores = np.asarray(stored[row]) @ query[number]
                out[number] = row[np.argsort(-scores)[:K]]
            return out

        times = latencies_ms(search, data.latency_queries)
        found = search(data.queries.vectors)
        rows.append(
            DenseRow(
                f"{describe(index.spec)} + re-rank on stored fp32 (mmap)",
                f"probes {index.spec.probes}, re-rank {factor}×{K}",
                None,
                0.0,
                0.0,
                times.p50,
                times.p95,
                times.cpu_p50,
                recall_at_k(found, data.truth),
            )
        )
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def measure_add(index: VectorIndex, extra: Vectors, data: Bench) -> AddResult:
    """Append vectors to a trained index without retraining, and check both old and new rows."""
    base = index.size
    _, found = index.search(data.queries.vectors, K)
    before = recall_at_k(found, data.truth)
    _, add_s = benchlib.timed(lambda: index.add(extra))
    _, first = index.search(extra, 1)
    found_first = float(np.mean(first[:, 0] == np.arange(base, base + len(extra))))
    _, found = index.search(data.queries.vectors, K)
    return AddResult(
        describe(index.spec),
        base,
        len(extra),
        add_s,
        found_first,
        before,
        recall_at_k(found, grown_truth(data, extra, base)),
    )


def grown_truth(data: Bench, extra: Vectors, base: int) -> npt.NDArray[np.int64]:
    """Exact top k over the index plus `extra`, merged from the old truth: no second 1M copy."""
    queries = data.queries.vectors
    old_scores = np.einsum("qkd,qd->qk", data.vectors[data.truth], queries)
    new_scores = queries @ extra.T
    scores = np.concatenate([old_scores, new_scores], axis=1)
    rows = np.concatenate(
        [data.truth, np.broadcast_to(np.arange(base, base + len(extra)), new_scores.shape)], axis=1
    )
    best = np.argsort(-scores, axis=1)[:, :K]
    return np.take_along_axis(rows, best, axis=1)


def exact_top_k(vectors: Vectors, queries: Vectors) -> npt.NDArray[np.int64]:
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    _, rows = flat.search(queries, K)
    return rows


def measure_hnsw(data: Bench, size: int, neighbours: int = 32) -> list[DenseRow]:
    """HNSW on the first `size` vectors: its build time alone rules it out at 1M on two cores."""
    vectors = data.vectors[:size]
    truth = exact_top_k(vectors, data.queries.vectors)
    index = faiss.IndexHNSWFlat(vectors.shape[1], neighbours, faiss.METRIC_INNER_PRODUCT)
    gc.collect()
    before = benchlib.rss_mb()
    _, build_s = benchlib.timed(lambda: index.add(vectors))
    rss_delta = benchlib.rss_mb() - before
    rows = []
    for ef in (32, 64, 128):
        index.hnsw.efSearch = ef
        times = latencies_ms(lambda q: index.search(q, K), data.latency_queries)
        _, found = index.search(data.queries.vectors, K)
        rows.append(
            DenseRow(
                f"HNSW{neighbours} flat at {size:,}",
                f"efSearch {ef}",
                build_s if ef == 32 else None,
                rss_delta,
                rss_delta,
                times.p50,
                times.p95,
                times.cpu_p50,
                recall_at_k(found, truth),
            )
        )
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return rows


# -- BM25 ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LexicalResult:
    size: int
    build_s: float
    rss_delta_mb: float
    files_mb: float
    p50_ms: float
    p95_ms: float
    cpu_p50_ms: float
    retrieve_p50_ms: float
    """Through `BM25.retrieve`, as index/lexical.py searched before reading the matrix itself."""
    retrieve_p95_ms: float
    retrieve_cpu_p50_ms: float
    queries: int


def through_retrieve(index: LexicalIndex, query: str, k: int) -> object:
    """The search as it was before index/lexical.py read the matrix itself: `BM25.retrieve`."""
    ids = index.query_ids(query)
    if not ids:
        return []
    return index._retriever.retrieve([ids], k=k, show_progress=False, n_threads=1)


def measure_lexical(texts: list[str], queries: Queries, folder: Path) -> LexicalResult:
    gc.collect()
    benchlib.release_free_memory()
    before = benchlib.rss_mb()
    index, build_s = benchlib.timed(lambda: LexicalIndex.build(texts))
    rss_delta = benchlib.rss_mb() - before
    print(f"BM25 {len(texts):,}: built in {build_s:.0f} s", file=sys.stderr, flush=True)
    index.save(folder)
    asked = queries.texts[:: max(1, len(queries.texts) // LATENCY_QUERIES)][:LATENCY_QUERIES]
    now, before_fix = interleaved(
        lambda query: index.search(query, BM25_DEPTH),
        lambda query: through_retrieve(index, query, BM25_DEPTH),
        asked,
    )
    return LexicalResult(
        len(texts),
        build_s,
        rss_delta,
        sum(file_mb(path) for path in folder.iterdir()),
        now.p50,
        now.p95,
        now.cpu_p50,
        before_fix.p50,
        before_fix.p95,
        before_fix.cpu_p50,
        len(asked),
    )


# -- one process serving both indexes --------------------------------------------------------------


@dataclass(frozen=True)
class ServiceMemory:
    python_mb: float
    """The process with numpy, FAISS and bm25s imported, nothing loaded."""
    dense_mb: float
    """After loading the dense index."""
    lexical_mb: float
    """After loading the BM25 index as well."""
    searched_mb: float
    """After 200 dense and BM25 searches."""
    embedder_mb: float
    """After loading the embedding model and embedding a question: the whole search path."""


def serve_probe(folder: Path, spec: VectorIndexSpec) -> ServiceMemory:
    """Runs in a fresh process (see `--probe`): what a server holding the 1M indexes uses."""
    python_mb = benchlib.rss_mb()
    dense = VectorIndex.load(folder / "vectors.faiss", spec)
    dense_mb = benchlib.rss_mb()
    lexical = LexicalIndex.load(folder / "bm25")
    lexical_mb = benchlib.rss_mb()
    queries = np.load(folder / "queries.npy", allow_pickle=False)
    texts = json.loads((folder / "queries.json").read_text(encoding="utf-8"))
    for vector, text in zip(queries, texts, strict=True):
        dense.search(vector[None, :], K)
        lexical.search(text, BM25_DEPTH)
    searched_mb = benchlib.rss_mb()
    build_embedder(Settings()).embed(texts[:1])
    return ServiceMemory(python_mb, dense_mb, lexical_mb, searched_mb, benchlib.rss_mb())


def probe_service(folder: Path, spec: VectorIndexSpec, queries: Queries) -> ServiceMemory:
    np.save(folder / "queries.npy", queries.vectors[:LATENCY_QUERIES], allow_pickle=False)
    (folder / "queries.json").write_text(json.dumps(queries.texts[:LATENCY_QUERIES]), "utf-8")
    (folder / "spec.json").write_text(json.dumps(asdict(spec)), "utf-8")
    command = [sys.executable, str(Path(__file__).resolve()), "--probe", str(folder)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return ServiceMemory(**json.loads(done.stdout.strip().splitlines()[-1]))


def stored_estimate(count: int, dimension: int) -> dict[str, float]:
    """MiB on disk of what index/store.py keeps beside the search indexes, at `count` chunks."""
    sentences = count * SENTENCES_PER_CHUNK
    return {
        "vectors.npy fp32": count * dimension * 4 / 2**20,
        "vectors.npy fp16": count * dimension * 2 / 2**20,
        "sentence_vectors.npy fp32": sentences * dimension * 4 / 2**20,
        "sentence_vectors.npy fp16": sentences * dimension * 2 / 2**20,
        "sentence ranges (held in memory)": count * 2 * 8 / 2**20,
    }


# -- report ----------------------------------------------------------------------------------------


def print_report(result: dict[str, Any]) -> None:
    size = result["chunks"]
    print(
        f"## Scale: {size:,} chunks pooled from {result['sentences']:,} real filing sentences\n\n"
        "Chunk vectors are the normalised mean of real sentence vectors, NOT re-encoded chunk "
        f"texts. Queries: {result['questions']} FinanceBench questions and "
        f"{result['held_out']} held-out sentences; latency: {LATENCY_QUERIES} single queries on "
        f"one FAISS thread (exact flat: {result['flat_queries']}); recall@10 against exact search "
        f"over all {result['questions'] + result['held_out']} queries.\n"
    )
    check = result["pooling_check"]
    if check:
        print(
            f"Pooled against re-encoded, on {check['chunks']} chunks: cosine mean "
            f"{check['cosine_mean']:.3f} (5th percentile {check['cosine_p5']:.3f}); a re-encoded "
            f"chunk finds its own pooled vector first {check['self_retrieval']:.1%}; top-10 "
            f"overlap for the queries {check['top10_overlap']:.2f}.\n"
        )
    print(
        benchlib.markdown_table(
            [
                "index",
                "setting",
                "build s",
                "index MiB",
                "RSS Δ MiB",
                "p50 ms",
                "p95 ms",
                "CPU p50 ms",
                "recall@10",
            ],
            [
                [
                    r["index"],
                    r["setting"],
                    r["build_s"],
                    r["index_mb"],
                    r["rss_delta_mb"],
                    r["p50_ms"],
                    r["p95_ms"],
                    r["cpu_p50_ms"],
                    f"{r['recall_at_10']:.3f}",
                ]
                for r in result["dense"]
            ],
        )
    )
    add = result["add"]
    if add:
        print(
            f"\nIncremental add ({add['spec']}): {add['added']:,} vectors to {add['base_size']:,} "
            f"in {add['add_s'] * 1000:.0f} ms, no retraining; {add['added_found_first']:.1%} of "
            f"them find themselves first; recall@10 {add['recall_before']:.3f} before, "
            f"{add['recall_after']:.3f} after (against exact search over the grown set)."
        )
    lexical = result["bm25"]
    if lexical:
        print(f"\n## BM25 (`LexicalIndex.search(q, {BM25_DEPTH})`, real questions and sentences)\n")
        print(
            benchlib.markdown_table(
                [
                    "N",
                    "build s",
                    "RSS Δ MiB",
                    "files MiB",
                    "p50 ms",
                    "p95 ms",
                    "CPU p50 ms",
                    "via BM25.retrieve p50 ms",
                    "p95 ms",
                    "CPU p50 ms",
                    "queries",
                ],
                [
                    [
                        lexical["size"],
                        lexical["build_s"],
                        lexical["rss_delta_mb"],
                        lexical["files_mb"],
                        lexical["p50_ms"],
                        lexical["p95_ms"],
                        lexical["cpu_p50_ms"],
                        lexical["retrieve_p50_ms"],
                        lexical["retrieve_p95_ms"],
                        lexical["retrieve_cpu_p50_ms"],
                        lexical["queries"],
                    ]
                ],
            )
        )
    memory = result["service_memory"]
    if memory:
        print(f"\n## One process serving both {size:,}-chunk indexes ({result['chosen']})\n")
        print(
            benchlib.markdown_table(
                ["stage", "RSS MiB"],
                [
                    ["python + numpy, FAISS, bm25s", memory["python_mb"]],
                    ["+ dense index loaded", memory["dense_mb"]],
                    ["+ BM25 index loaded", memory["lexical_mb"]],
                    [f"+ {LATENCY_QUERIES} dense and BM25 searches", memory["searched_mb"]],
                    ["+ embedding model, one question embedded", memory["embedder_mb"]],
                ],
            )
        )
    print(f"\nStored beside them by index/store.py at {size:,} chunks (disk, memory-mapped):\n")
    print(
        benchlib.markdown_table(
            ["file", "MiB"], [[name, mb] for name, mb in result["stored_estimate"].items()]
        )
    )


# -- main ------------------------------------------------------------------------------------------


def candidates(size: int) -> list[VectorIndexSpec]:
    """What competes at `size`: IVF with full vectors (today's), and two compressed codecs. The
    PQ index is built once with its 8-bit re-rank vectors, and also searched without them."""
    lists = int(math.sqrt(size))
    return [
        VectorIndexSpec("ivf", lists=lists, probes=lists // 32),
        VectorIndexSpec("ivf", lists=lists, probes=lists // 32, codec="sq8"),
        VectorIndexSpec(
            "ivf", lists=lists, probes=lists // 32, codec=f"pq{PQ_BYTES}", refine_factor=4
        ),
    ]


def run_dense(
    args: argparse.Namespace,
    sentence_vectors: Vectors,
    members: Members,
    queries: Queries,
    scratch: Path,
    chosen: VectorIndexSpec,
) -> tuple[list[DenseRow], AddResult | None]:
    vectors = pooled_vectors(sentence_vectors, members)
    extra = vectors[-ADDED:].copy()
    vectors = vectors[:-ADDED]
    data, dense = exact_baseline(vectors, queries, scratch, args.flat_queries)
    add = None
    for spec in candidates(len(vectors)):
        if spec.codec not in args.codecs.split(","):
            continue
        index, rows = measure_spec(spec, data)
        dense += rows
        if spec.refine_factor:
            dense += pq_alone(index, data)
        if replace(spec, probes=0) == replace(chosen, probes=0):
            chosen_index = use_settings(index, chosen)
            chosen_index.save(scratch / "vectors.faiss")  # for the service probe
            add = measure_add(chosen_index, extra, data)
        del index
    for name in ("candidate.faiss", "vectors.npy"):
        (scratch / name).unlink(missing_ok=True)
    if args.hnsw_size:
        dense += measure_hnsw(data, args.hnsw_size)
    return dense, add


def run(args: argparse.Namespace) -> dict[str, Any]:
    sentences = load_sentences()
    embedder = build_embedder(Settings())
    held_out = hold_out(sentences)
    queries = load_queries(sentences, held_out, embedder)
    members = recombine(sentences, held_out, args.size)
    print(f"{args.size:,} chunks from {len(sentences.texts):,} sentences", file=sys.stderr)
    check = (
        check_pooling(sentences, members, queries.vectors, embedder, args.pooling_check)
        if args.pooling_check
        else None
    )
    # Kept between runs, so that a dense-only and a BM25-only run still meet in the probe.
    scratch = CACHE / f"scale-run-{args.size - ADDED}"
    scratch.mkdir(parents=True, exist_ok=True)
    chosen = choose_spec(args.size - ADDED)
    dense: list[DenseRow] = []
    add = None
    if not args.skip_dense:
        dense, add = run_dense(args, sentences.vectors, members, queries, scratch, chosen)
    lexical = None
    if not args.skip_bm25:
        texts = chunk_texts(sentences.texts, members[:-ADDED])
        lexical = measure_lexical(texts, queries, scratch / "bm25")
        (scratch / "bm25.json").write_text(json.dumps(asdict(lexical)), "utf-8")
        del texts
        gc.collect()
    elif (scratch / "bm25.json").is_file():  # a BM25-only run measured it (same chunks)
        lexical = LexicalResult(**json.loads((scratch / "bm25.json").read_text("utf-8")))
    memory = None
    if (scratch / "vectors.faiss").is_file() and (scratch / "bm25").is_dir():
        memory = probe_service(scratch, chosen, queries)
    return {
        "chunks": args.size - ADDED,
        "sentences": len(sentences.texts),
        "questions": queries.questions,
        "held_out": len(held_out),
        "flat_queries": args.flat_queries,
        "chosen": describe(chosen) + f", probes {chosen.probes}",
        "pooling_check": asdict(check) if check else None,
        "dense": [asdict(r) for r in dense],
        "add": asdict(add) if add else None,
        "bm25": asdict(lexical) if lexical else None,
        "service_memory": asdict(memory) if memory else None,
        "stored_estimate": stored_estimate(args.size - ADDED, sentences.vectors.shape[1]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=1_000_000 + ADDED, help="chunks to make")
    parser.add_argument("--quick", action="store_true", help="100k chunks, no HNSW: a fast check")
    parser.add_argument("--codecs", default="flat,sq8,pq48", help="IVF codecs to compare")
    parser.add_argument("--hnsw-size", type=int, default=100_000, help="0: skip HNSW")
    parser.add_argument("--flat-queries", type=int, default=40, help="exact search is slow")
    parser.add_argument("--pooling-check", type=int, default=300, help="0: skip it")
    parser.add_argument("--skip-bm25", action="store_true")
    parser.add_argument("--skip-dense", action="store_true")
    parser.add_argument("--prepare-only", action="store_true", help="embed the sentences, stop")
    parser.add_argument("--probe", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    benchlib.quiet_libraries()
    if args.probe:
        spec = VectorIndexSpec(**json.loads((args.probe / "spec.json").read_text("utf-8")))
        print(json.dumps(asdict(serve_probe(args.probe, spec))))
        return 0
    if args.prepare_only:
        load_sentences()
        return 0
    if args.quick:
        args.size, args.hnsw_size, args.pooling_check = 100_000 + ADDED, 0, 100
    result = run(args)
    print_report(result)
    path = benchlib.write_results("scale", result)
    print(f"\nJSON: {path.relative_to(benchlib.REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
