"""End-to-end ingest (parse + chunk + embed + index) of the reference corpus: Chancery vs LangChain.

The baseline is the standard LangChain recipe with its own HuggingFaceEmbeddings (fp32). Chancery
embeds under bf16 autocast where the CPU supports it, which alone roughly doubles embedding speed
(FINDINGS.md); two extra rows — LangChain with Chancery's embedder and Chancery in fp32 — separate
that from the rest of the pipeline. Chancery's embed time also covers encoding every chunk's
sentences on their own (`embed_spans`, kept for abstention), which the recipe does not do.
Runs are interleaved and each row reports its median.
Model loading is excluded from every row; it is reported once, separately.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import benchlib
import recipes
from langchain_core.embeddings import Embeddings

from index.embedder import Embedder, cpu_has_bf16
from service.build import build_chunking, build_embedder, build_ingester
from service.ingester import Chunking
from service.settings import Settings


@dataclass(frozen=True)
class Run:
    pages: int
    chunks: int
    parse_s: float
    chunk_s: float
    embed_s: float
    index_s: float

    @property
    def total_s(self) -> float:
        return self.parse_s + self.chunk_s + self.embed_s + self.index_s


@dataclass(frozen=True)
class Summary:
    pipeline: str
    embedder: str
    runs: int
    pages: int
    chunks: int
    parse_s: float
    chunk_s: float
    embed_s: float
    index_s: float
    total_s: float
    best_total_s: float
    pages_per_s: float
    chunks_per_s: float
    speedup: float | None
    """Baseline median total time over this pipeline's."""


@dataclass(frozen=True)
class Pipeline:
    name: str
    embedder: str
    run: Callable[[], Run]


def chancery_pipeline(corpus: Path, settings: Settings, embedder: Embedder) -> Callable[[], Run]:
    ingester = build_ingester(settings, embedder)

    def run() -> Run:
        chunked = recipes.chancery_chunks(corpus, ingester.chunking)
        with recipes.fresh_index_dir() as tmp:
            timing = recipes.chancery_index(Path(tmp) / "index", chunked, ingester)
        return Run(
            chunked.pages,
            len(chunked.chunks),
            chunked.parse_s,
            chunked.chunk_s,
            timing.embed_s,
            timing.write_s,
        )

    return run


def langchain_pipeline(corpus: Path, embeddings: Embeddings) -> Callable[[], Run]:
    def run() -> Run:
        documents, load_s = benchlib.timed(lambda: recipes.langchain_load(corpus))
        chunks, split_s = benchlib.timed(lambda: recipes.langchain_split(documents))
        timed = recipes.TimedEmbeddings(embeddings)
        _, store_s = benchlib.timed(lambda: recipes.langchain_store(chunks, timed))
        return Run(
            len(documents), len(chunks), load_s, split_s, timed.seconds, store_s - timed.seconds
        )

    return run


def summarise(pipeline: Pipeline, runs: list[Run], baseline_total: float) -> Summary:
    total = benchlib.median([run.total_s for run in runs])
    return Summary(
        pipeline=pipeline.name,
        embedder=pipeline.embedder,
        runs=len(runs),
        pages=runs[0].pages,
        chunks=runs[0].chunks,
        parse_s=benchlib.median([run.parse_s for run in runs]),
        chunk_s=benchlib.median([run.chunk_s for run in runs]),
        embed_s=benchlib.median([run.embed_s for run in runs]),
        index_s=benchlib.median([run.index_s for run in runs]),
        total_s=total,
        best_total_s=min(run.total_s for run in runs),
        pages_per_s=runs[0].pages / total,
        chunks_per_s=runs[0].chunks / total,
        speedup=benchlib.ratio(baseline_total, total),
    )


def token_lengths(corpus: Path, chunking: Chunking) -> dict[str, float]:
    """How many LangChain chunks the model would silently truncate, against Chancery's."""
    tokenizer = chunking.tokenizer
    langchain = [
        tokenizer.count(chunk.page_content)
        for chunk in recipes.langchain_split(recipes.langchain_load(corpus))
    ]
    chancery = [
        tokenizer.count(chunk.text) for chunk in recipes.chancery_chunks(corpus, chunking).chunks
    ]
    limit = chunking.config.max_tokens  # 256 word pieces less [CLS] and [SEP]
    return {
        "model_text_tokens": limit,
        "langchain_over_limit": sum(count > limit for count in langchain) / len(langchain),
        "langchain_mean_tokens": sum(langchain) / len(langchain),
        "langchain_max_tokens": max(langchain),
        "chancery_over_limit": sum(count > limit for count in chancery) / len(chancery),
        "chancery_mean_tokens": sum(chancery) / len(chancery),
        "chancery_max_tokens": max(chancery),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    corpus = benchlib.require_corpus()
    benchlib.quiet_libraries()

    settings = Settings()
    chunking = build_chunking(settings)
    loads: dict[str, float] = {}
    chancery_embedder, loads["Chancery embedder (bf16 auto)"] = benchlib.timed(
        lambda: build_embedder(settings).load()
    )
    fp32_settings = Settings(embed_bf16=False)
    fp32_embedder, loads["Chancery embedder (fp32)"] = benchlib.timed(
        lambda: build_embedder(fp32_settings).load()
    )
    huggingface, loads["LangChain HuggingFaceEmbeddings"] = benchlib.timed(
        recipes.huggingface_embeddings
    )
    bf16 = "bf16" if cpu_has_bf16() else "fp32 (no native bf16)"
    pipelines = [
        Pipeline(
            "LangChain recipe (baseline)",
            "HuggingFaceEmbeddings, fp32",
            langchain_pipeline(corpus, huggingface),
        ),
        Pipeline(
            "LangChain recipe",
            f"Chancery embedder, {bf16}",
            langchain_pipeline(corpus, recipes.ChanceryEmbeddings(chancery_embedder)),
        ),
        Pipeline(
            "Chancery",
            f"Chancery embedder, {bf16}",
            chancery_pipeline(corpus, settings, chancery_embedder),
        ),
        Pipeline(
            "Chancery",
            "Chancery embedder, fp32",
            chancery_pipeline(corpus, fp32_settings, fp32_embedder),
        ),
    ]
    # Warm-up of first-call costs (PDF libraries, torch kernels) without a full extra pass.
    recipes.langchain_load(corpus)
    recipes.chancery_chunks(corpus, chunking)
    warm_texts = ["warm-up sentence for the embedding model"] * 8
    for embedder in (chancery_embedder, fp32_embedder):
        embedder.embed(warm_texts)
    huggingface.embed_documents(warm_texts)
    runs: dict[int, list[Run]] = {number: [] for number in range(len(pipelines))}
    for _ in range(args.repeats):
        for number, pipeline in enumerate(pipelines):
            runs[number].append(pipeline.run())
    baseline_total = benchlib.median([run.total_s for run in runs[0]])
    summaries = [
        summarise(pipeline, runs[number], baseline_total)
        for number, pipeline in enumerate(pipelines)
    ]
    lengths = token_lengths(corpus, chunking)

    print(f"## Ingest throughput, reference corpus (median of {args.repeats} runs)\n")
    headers = [
        "pipeline",
        "embedder",
        "pages",
        "chunks",
        "parse s",
        "chunk s",
        "embed s",
        "index s",
        "total s",
        "best total s",
        "pages/s",
        "chunks/s",
        "× baseline",
    ]
    rows = [
        [
            s.pipeline,
            s.embedder,
            s.pages,
            s.chunks,
            s.parse_s,
            s.chunk_s,
            s.embed_s,
            s.index_s,
            s.total_s,
            s.best_total_s,
            s.pages_per_s,
            s.chunks_per_s,
            s.speedup,
        ]
        for s in summaries
    ]
    print(benchlib.markdown_table(headers, rows))
    print(
        "\nEmbeddings for the LangChain baseline: `HuggingFaceEmbeddings` on the local model "
        "folder (works offline). Chancery's embed s includes a second pass over each chunk's "
        "sentences, each encoded on its own (deduplicated, in batches of 128) for answers and "
        "abstention. "
        "Index s: FAISS add and docstore for LangChain; FAISS, BM25, "
        "SQLite records, fsync and rename for Chancery. Ratios use median totals. "
        "Model loading, excluded above: "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in loads.items())
        + "."
    )
    print(f"\n### Chunk length in model word pieces (limit {lengths['model_text_tokens']:.0f})\n")
    print(
        benchlib.markdown_table(
            ["chunks", "mean tokens", "max tokens", "over the limit (truncated)"],
            [
                [
                    "LangChain 1000/200 characters",
                    lengths["langchain_mean_tokens"],
                    int(lengths["langchain_max_tokens"]),
                    f"{lengths['langchain_over_limit']:.1%}",
                ],
                [
                    "Chancery",
                    lengths["chancery_mean_tokens"],
                    int(lengths["chancery_max_tokens"]),
                    f"{lengths['chancery_over_limit']:.1%}",
                ],
            ],
            digits=1,
        )
    )
    path = benchlib.write_results(
        "ingest_throughput",
        {
            "repeats": args.repeats,
            "model_load_s": loads,
            "summaries": [asdict(summary) for summary in summaries],
            "runs": {
                f"{pipelines[n].name} / {pipelines[n].embedder}": [
                    {**asdict(run), "total_s": run.total_s} for run in runs[n]
                ]
                for n in runs
            },
            "chunk_tokens": lengths,
        },
    )
    print(f"\nJSON: {path.relative_to(benchlib.REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
