"""Scatter-gather over k shards against one index, in the same run: latency and equality.

The collection is the twelve FinanceBench-dev filings, from the vectors that
`bench/financebench_retrieval.py --cache` stored (nothing is embedded but the questions), or,
without that cache, the reference corpus indexed afresh. It is split by document into k = 1,
2, 4, 8 shards (`index/shards.py`), each searched by a process of its own on this one machine,
and every question is searched both ways in turn, so that load from other work falls on both.
The question vectors are embedded once beforehand and handed to both searches: the model's
time is the same either way and would only blur the comparison.

Equality is of the top ten (rows, order, scores within 1e-6) against one index as it ships,
which orders equal scores by row, as the merge does.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import benchlib
import numpy as np

from index.embedder import EmbedderIdentity, Vectors
from index.retrieve import Hit, Retriever
from index.shards import ShardSearcher, split_index
from index.store import (
    Index,
    current_version,
    load_index,
    read_manifest,
    write_version,
    writer_lock,
)
from service.build import build_embedder
from service.settings import Settings

CACHE = benchlib.REPO / "var" / "bench-cache" / "financebench"
FINANCEBENCH_QUESTIONS = benchlib.REPO.parent / "shared" / "financebench-dev" / "questions.jsonl"
K = 10
SHARD_COUNTS = (1, 2, 4, 8)
PASSES = 3
"""Times each question is searched per setting: FinanceBench-dev has 34 questions."""


class FixedEmbedder:
    """Question vectors embedded beforehand, under the identity of the model that made them."""

    def __init__(self, identity: EmbedderIdentity, vectors: dict[str, Vectors]) -> None:
        self._identity = identity
        self._vectors = vectors

    @property
    def identity(self) -> EmbedderIdentity:
        return self._identity

    def embed(self, texts: Sequence[str]) -> Vectors:
        return np.concatenate([self._vectors[text] for text in texts])

    def embed_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[Vectors, Vectors]:
        raise NotImplementedError("searches only")


@dataclass(frozen=True)
class ShardRun:
    shards: int
    chunks_per_shard: list[int]
    split_s: float
    open_s: float
    """Processes started, shards loaded, BM25 rebuilt with the collection's statistics."""
    one_p50_ms: float
    one_p95_ms: float
    sharded_p50_ms: float
    sharded_p95_ms: float
    p50_ratio: float | None
    p95_ratio: float | None
    equal: float


def cached_version() -> Path | None:
    """The newest FinanceBench index `financebench_retrieval.py --cache` left, if any."""
    versions = [current_version(root) for root in CACHE.glob("chancery-*")]
    found = [v for v in versions if v is not None]
    return max(found, key=lambda v: v.stat().st_mtime) if found else None


def financebench_questions() -> list[str]:
    lines = FINANCEBENCH_QUESTIONS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


@contextlib.contextmanager
def collection(folder: Path) -> Iterator[tuple[Path, list[str], str]]:
    """An index root of the collection, its questions, and what it is."""
    version = cached_version()
    if version is not None and FINANCEBENCH_QUESTIONS.is_file():
        manifest = read_manifest(version)
        cached = Index(version, manifest)
        try:
            entries = list(cached.entries())
        finally:
            cached.close()
        root = folder / "whole"
        # A fresh version from the stored vectors: BM25 and records from today's code.
        with writer_lock(root):
            write_version(root, entries, manifest.embedder, manifest.chunking)
        yield root, financebench_questions(), f"FinanceBench-dev filings ({version.parent.name})"
        return
    print("No FinanceBench cache: indexing the reference corpus instead.", file=sys.stderr)
    with benchlib.corpus_index() as (index, _):
        root = index.directory.parent
        questions = [q.question for q in benchlib.answerable_gold()]
        yield root, questions, "reference corpus"


def _same(hits: list[Hit], other: list[Hit]) -> bool:
    return [h.row for h in hits] == [h.row for h in other] and bool(
        np.allclose([h.score for h in hits], [h.score for h in other], rtol=1e-6, atol=0)
    )


def run(
    root: Path,
    folder: Path,
    questions: Sequence[str],
    embedder: FixedEmbedder,
    counts: Sequence[int],
) -> tuple[list[ShardRun], int]:
    one = load_index(root, embedder.identity)
    shipped = Retriever(one, embedder)
    runs = []
    try:
        for count in counts:
            roots = [folder / f"k{count}" / f"shard-{n}" for n in range(count)]
            _, split_s = benchlib.timed(functools.partial(split_index, one, roots))
            started = time.perf_counter()
            with ShardSearcher(roots, embedder) as sharded:
                open_s = time.perf_counter() - started
                sizes = sharded.shard_sizes
                for question in questions[:2]:  # warm both paths up
                    shipped.search(question, K)
                    sharded.search(question, K)
                one_ms: list[float] = []
                sharded_ms: list[float] = []
                equal = 0
                for _ in range(PASSES):
                    for question in questions:
                        whole, seconds = benchlib.timed(
                            functools.partial(shipped.search, question, K)
                        )
                        one_ms.append(seconds * 1000)
                        hits, seconds = benchlib.timed(
                            functools.partial(sharded.search, question, K)
                        )
                        sharded_ms.append(seconds * 1000)
                        equal += _same(hits.hits, whole.hits)
            searched = PASSES * len(questions)
            runs.append(
                ShardRun(
                    count,
                    sizes,
                    round(split_s, 2),
                    round(open_s, 2),
                    round(benchlib.median(one_ms), 2),
                    round(benchlib.percentile(one_ms, 95), 2),
                    round(benchlib.median(sharded_ms), 2),
                    round(benchlib.percentile(sharded_ms, 95), 2),
                    _rounded(benchlib.ratio(benchlib.median(sharded_ms), benchlib.median(one_ms))),
                    _rounded(
                        benchlib.ratio(
                            benchlib.percentile(sharded_ms, 95), benchlib.percentile(one_ms, 95)
                        )
                    ),
                    round(equal / searched, 3),
                )
            )
            print(
                f"k={count}: sharded p50 {runs[-1].sharded_p50_ms} ms vs one index "
                f"{runs[-1].one_p50_ms} ms, equal {runs[-1].equal}",
                file=sys.stderr,
            )
        return runs, one.vectors.size
    finally:
        one.close()


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--shards", default=",".join(map(str, SHARD_COUNTS)), help="shard counts to try"
    )
    args = parser.parse_args(argv)
    counts = [int(part) for part in args.shards.split(",")]
    benchlib.quiet_libraries()
    with tempfile.TemporaryDirectory() as name, collection(Path(name)) as found:
        root, questions, what = found
        model = build_embedder(Settings())
        vectors = model.embed(questions)
        embedder = FixedEmbedder(
            model.identity, {q: vectors[n : n + 1] for n, q in enumerate(questions)}
        )
        runs, chunks = run(root, Path(name), questions, embedder, counts)
    headers = [
        "shards",
        "one index p50 ms",
        "sharded p50 ms",
        "p50 ratio",
        "one index p95 ms",
        "sharded p95 ms",
        "p95 ratio",
        "open s",
        "top-10 equal",
    ]
    rows = [
        [
            r.shards,
            r.one_p50_ms,
            r.sharded_p50_ms,
            r.p50_ratio,
            r.one_p95_ms,
            r.sharded_p95_ms,
            r.p95_ratio,
            r.open_s,
            r.equal,
        ]
        for r in runs
    ]
    print(f"\n{what}: {chunks:,} chunks, {len(questions)} questions x {PASSES}, hybrid, k={K}\n")
    print(benchlib.markdown_table(headers, rows, digits=3))
    path = benchlib.write_results(
        "sharding",
        {
            "collection": what,
            "chunks": chunks,
            "questions": len(questions),
            "passes": PASSES,
            "k": K,
            "runs": [asdict(r) for r in runs],
        },
    )
    print(f"\nwrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
