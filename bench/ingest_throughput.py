"""End-to-end ingest (parse + chunk + embed + index): Chancery vs LangChain, reference corpus and
FinanceBench-dev filings.

The baseline is the standard LangChain recipe with its own HuggingFaceEmbeddings (fp32). Chancery
embeds under bf16 autocast where the CPU supports it, which alone roughly doubles embedding speed
(FINDINGS.md); two extra rows — LangChain with Chancery's embedder and Chancery in fp32 — separate
that from the rest of the pipeline (on a CPU without bf16 the "fp32" row is what a ministry gets).
Chancery's embed time also covers encoding every chunk's sentences on their own (`embed_spans`,
kept for abstention and best-sentence ranking), which the recipe does not do.
Runs are interleaved and each row reports its median.
Model loading is excluded from every row; it is reported once, separately.
A last table times re-ingesting a filing after one of its pages changed: only the chunks whose
text changed are embedded again.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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


Corpus = Path | Sequence[Path]
"""The reference corpus folder, or a list of files."""


def chancery_pipeline(corpus: Corpus, settings: Settings, embedder: Embedder) -> Callable[[], Run]:
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


def langchain_pipeline(corpus: Corpus, embeddings: Embeddings) -> Callable[[], Run]:
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


def token_lengths(corpus: Corpus, chunking: Chunking) -> dict[str, float]:
    """How many LangChain chunks the model would silently truncate, against Chancery's."""

    def counts(texts: list[str]) -> list[int]:
        return [len(spans) for spans in chunking.tokenizer.token_spans(texts)]

    langchain = counts(
        [chunk.page_content for chunk in recipes.langchain_split(recipes.langchain_load(corpus))]
    )
    chancery = counts([chunk.text for chunk in recipes.chancery_chunks(corpus, chunking).chunks])
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


FILINGS = benchlib.REPO.parent / "shared" / "financebench-dev" / "pdfs"
DEFAULT_FILINGS = ("GENERALMILLS_2020_10K.pdf",)
"""The shortest filing (127 pages): the recipe alone embeds it for minutes on two cores."""


@dataclass(frozen=True)
class Models:
    settings: Settings
    fp32_settings: Settings
    chancery: Embedder
    fp32: Embedder
    huggingface: Embeddings
    load_s: dict[str, float]


def load_models() -> Models:
    settings = Settings()
    fp32_settings = Settings(embed_bf16=False)
    loads: dict[str, float] = {}
    chancery, loads["Chancery embedder (bf16 auto)"] = benchlib.timed(
        lambda: build_embedder(settings).load()
    )
    fp32, loads["Chancery embedder (fp32)"] = benchlib.timed(
        lambda: build_embedder(fp32_settings).load()
    )
    huggingface, loads["LangChain HuggingFaceEmbeddings"] = benchlib.timed(
        recipes.huggingface_embeddings
    )
    warm_texts = ["warm-up sentence for the embedding model"] * 8
    for embedder in (chancery, fp32):
        embedder.embed(warm_texts)
    huggingface.embed_documents(warm_texts)
    return Models(settings, fp32_settings, chancery, fp32, huggingface, loads)


def pipelines_for(corpus: Corpus, models: Models) -> list[Pipeline]:
    bf16 = "bf16" if cpu_has_bf16() else "fp32 (no native bf16)"
    return [
        Pipeline(
            "LangChain recipe (baseline)",
            "HuggingFaceEmbeddings, fp32",
            langchain_pipeline(corpus, models.huggingface),
        ),
        Pipeline(
            "LangChain recipe",
            f"Chancery embedder, {bf16}",
            langchain_pipeline(corpus, recipes.ChanceryEmbeddings(models.chancery)),
        ),
        Pipeline(
            "Chancery",
            f"Chancery embedder, {bf16}",
            chancery_pipeline(corpus, models.settings, models.chancery),
        ),
        Pipeline(
            "Chancery",
            "Chancery embedder, fp32",
            chancery_pipeline(corpus, models.fp32_settings, models.fp32),
        ),
    ]


def measure(title: str, corpus: Corpus, models: Models, repeats: int) -> dict[str, Any]:
    """Every pipeline `repeats` times, interleaved; prints the table and returns the JSON part."""
    pipelines = pipelines_for(corpus, models)
    chunking = build_chunking(models.settings)
    # Warm-up of first-call costs (PDF libraries, torch kernels) without a full extra pass.
    recipes.langchain_load(corpus)
    recipes.chancery_chunks(corpus, chunking)
    runs: dict[int, list[Run]] = {number: [] for number in range(len(pipelines))}
    for _ in range(repeats):
        for number, pipeline in enumerate(pipelines):
            runs[number].append(pipeline.run())
    baseline_total = benchlib.median([run.total_s for run in runs[0]])
    summaries = [
        summarise(pipeline, runs[number], baseline_total)
        for number, pipeline in enumerate(pipelines)
    ]
    print(f"\n## Ingest throughput, {title} (median of {repeats} runs)\n")
    print_summaries(summaries)
    return {
        "repeats": repeats,
        "summaries": [asdict(summary) for summary in summaries],
        "runs": {
            f"{pipelines[n].name} / {pipelines[n].embedder}": [
                {**asdict(run), "total_s": run.total_s} for run in runs[n]
            ]
            for n in runs
        },
    }


def print_summaries(summaries: Sequence[Summary]) -> None:
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


@dataclass(frozen=True)
class Edit:
    file: str
    chunks: int
    full_s: float
    edited_page: int
    embedded_chunks: int
    reused_chunks: int
    edit_s: float


def one_page_edit(path: Path, models: Models) -> Edit:
    """Ingest a filing, then the same filing with one word changed on its middle page."""
    ingester = build_ingester(models.fp32_settings, models.fp32)
    [(document, chunks)] = recipes.chancery_chunks([path], ingester.chunking).documents
    middle = len(document.pages) // 2
    page = document.pages[middle]
    # The same length, so the page's heading offsets stay valid.
    changed = dataclasses.replace(page, text=page.text.replace("the", "THE", 1))
    edited = dataclasses.replace(
        document,
        sha256="0" * 64,
        pages=(*document.pages[:middle], changed, *document.pages[middle + 1 :]),
    )
    with recipes.fresh_index_dir() as tmp:
        root = Path(tmp) / "index"
        _, full_s = benchlib.timed(lambda: ingester.update(root, [(document, chunks)]))
        result, edit_s = benchlib.timed(
            lambda: ingester.update(root, [(edited, ingester.chunking.chunk(edited))])
        )
    return Edit(
        path.name,
        len(chunks),
        full_s,
        page.number,
        result.embedded_chunks,
        result.reused_chunks,
        edit_s,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=3, help="on the reference corpus")
    parser.add_argument(
        "--filings",
        nargs="*",
        default=list(DEFAULT_FILINGS),
        help=f"FinanceBench-dev file names in {FILINGS} (default: %(default)s; none to skip)",
    )
    parser.add_argument("--filing-repeats", type=int, default=1)
    args = parser.parse_args(argv)
    corpus = benchlib.require_corpus()
    benchlib.quiet_libraries()
    filings = [FILINGS / name for name in args.filings]
    missing = [str(path) for path in filings if not path.is_file()]
    if missing:
        parser.error(f"no such filing: {', '.join(missing)}")

    models = load_models()
    results: dict[str, Any] = {"model_load_s": models.load_s}
    results["reference"] = measure("reference corpus", corpus, models, args.repeats)
    chunking = build_chunking(models.settings)
    lengths = token_lengths(corpus, chunking)
    print(
        "\nEmbeddings for the LangChain baseline: `HuggingFaceEmbeddings` on the local model "
        "folder (works offline). Chancery's embed s includes a second pass over each chunk's "
        "sentences, each encoded on its own (deduplicated, batched by token length) for answers, "
        "abstention and best-sentence ranking. "
        "Index s: FAISS add and docstore for LangChain; FAISS, BM25, "
        "SQLite records, fsync and rename for Chancery. Ratios use median totals. "
        "Model loading, excluded above: "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in models.load_s.items())
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
    results["chunk_tokens"] = lengths
    if filings:
        title = "FinanceBench-dev: " + ", ".join(path.name for path in filings)
        results["financebench"] = measure(title, filings, models, args.filing_repeats)
        edits = [one_page_edit(path, models) for path in filings]
        print("\n### Re-ingest after one word changed on the middle page (fp32)\n")
        print(
            benchlib.markdown_table(
                ["file", "chunks", "full ingest s", "page", "re-embedded", "reused", "re-ingest s"],
                [
                    [
                        e.file,
                        e.chunks,
                        e.full_s,
                        e.edited_page,
                        e.embedded_chunks,
                        e.reused_chunks,
                        e.edit_s,
                    ]
                    for e in edits
                ],
            )
        )
        results["one_page_edit"] = [asdict(edit) for edit in edits]
    path = benchlib.write_results("ingest_throughput", results)
    print(f"\nJSON: {path.relative_to(benchlib.REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
