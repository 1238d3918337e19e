"""Ingest on a local Ray cluster of 1, 2 and 4 workers against the single process, on the first
pages of FinanceBench-dev filings.

Each row is one ingest of the same files into a fresh index, from parsing to the written version,
model loading included (a single process loads one model, its libraries already imported; each
Ray worker imports them and loads its own). The baseline is the single process with one torch
thread, which is what each Ray worker runs with: the 1-worker row over it is what Ray itself
costs. The single process with every core is the ingest one runs without Ray. Starting the
cluster is timed apart, as a long-running cluster does not pay it per ingest. On a machine with
fewer cores than workers, the extra workers share them.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import benchlib

from service.build import build_embedder, build_ingester
from service.settings import Settings

FILINGS = benchlib.REPO.parent / "shared" / "financebench-dev" / "pdfs"
DEFAULT_FILES = (
    "3M_2018_10K.pdf",
    "ACTIVISIONBLIZZARD_2019_10K.pdf",
    "BLOCK_2020_10K.pdf",
    "LOCKHEEDMARTIN_2022_10K.pdf",
)
DEFAULT_PAGES = 10
"""Pages kept of each filing: whole filings take minutes each to embed on two cores."""


@dataclass(frozen=True)
class Row:
    path: str
    workers: int
    threads_each: int
    files: int
    pages: int
    chunks: int
    cluster_start_s: float | None
    parse_s: float
    update_s: float
    """Embedding (model loads included) and writing the version."""
    total_s: float
    chunks_per_s: float
    vs_baseline: float | None
    """This row's total time over the baseline's: above 1 is slower."""
    same_chunks: bool
    """The version holds exactly the baseline's chunk ids."""


@dataclass(frozen=True)
class Measured:
    pages: int
    chunk_ids: list[str]
    parse_s: float
    update_s: float


def first_pages(sources: list[Path], pages: int, folder: Path) -> list[Path]:
    """Copies of `sources` cut to their first `pages` pages (all when 0), under the same names."""
    from pypdf import PdfReader, PdfWriter

    copies = []
    for source in sources:
        target = folder / source.name
        reader = PdfReader(source)
        writer = PdfWriter()
        for page in reader.pages[: pages or len(reader.pages)]:
            writer.add_page(page)
        with target.open("wb") as stream:
            writer.write(stream)
        copies.append(target)
    return copies


def ingest_once(settings: Settings, files: list[Path], root: Path, ray: bool) -> Measured:
    """One ingest with a fresh embedder, so that its model load counts, as in a real one."""
    from index.store import load_index

    embedder = build_embedder(settings)
    workers = None
    if ray:
        from service.ray_ingest import RayWorkers

        workers = RayWorkers.from_settings(settings, embedder.identity)
    ingester = build_ingester(settings, embedder, workers)
    parsed, parse_s = benchlib.timed(lambda: ingester.parse(files))
    _, update_s = benchlib.timed(lambda: ingester.update(root, parsed.documents))
    index = load_index(root, embedder.identity)
    try:
        chunk_ids = [chunk.chunk_id for entry in index.entries() for chunk in entry.chunks]
    finally:
        index.close()
    return Measured(sum(report.pages for report in parsed.report.ok), chunk_ids, parse_s, update_s)


def on_cluster(
    workers: int, settings: Settings, files: list[Path], root: Path
) -> tuple[Measured, float]:
    """An ingest on a new local cluster of `workers` CPUs, and how long the cluster took to
    start."""
    import ray

    from service.ray_ingest import WORKER_ENV

    _, start_s = benchlib.timed(
        lambda: ray.init(
            num_cpus=workers,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": WORKER_ENV},
        )
    )
    try:
        return ingest_once(settings, files, root, ray=True), start_s
    finally:
        ray.shutdown()


def row(
    path: str,
    workers: int,
    threads: int,
    files: int,
    measured: Measured,
    baseline: Measured | None,
    start_s: float | None = None,
) -> Row:
    total = measured.parse_s + measured.update_s
    reference = baseline or measured
    return Row(
        path=path,
        workers=workers,
        threads_each=threads,
        files=files,
        pages=measured.pages,
        chunks=len(measured.chunk_ids),
        cluster_start_s=start_s,
        parse_s=measured.parse_s,
        update_s=measured.update_s,
        total_s=total,
        chunks_per_s=len(measured.chunk_ids) / total,
        vs_baseline=benchlib.ratio(total, reference.parse_s + reference.update_s),
        same_chunks=measured.chunk_ids == reference.chunk_ids,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--files",
        nargs="+",
        default=list(DEFAULT_FILES),
        help=f"FinanceBench-dev file names in {FILINGS} (default: %(default)s)",
    )
    parser.add_argument(
        "--pages",
        type=int,
        default=DEFAULT_PAGES,
        help="keep the first N pages of each filing; 0 keeps them all (default: %(default)s)",
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2, 4], help="(default: %(default)s)"
    )
    args = parser.parse_args(argv)
    sources = [FILINGS / name for name in args.files]
    missing = [str(path) for path in sources if not path.is_file()]
    if missing:
        parser.error(f"no such filing: {', '.join(missing)}")
    benchlib.quiet_libraries()
    one_thread = Settings(embed_threads=1)

    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "files").mkdir()
        files = first_pages(sources, args.pages, work / "files")
        # Importing torch costs seconds the first time only: out of the first row, as it is
        # out of every later one in this process.
        build_embedder(one_thread).load()
        baseline = ingest_once(one_thread, files, work / "single-1", ray=False)
        rows.append(row("single process", 1, 1, len(files), baseline, None))
        every_core = ingest_once(Settings(), files, work / "single-all", ray=False)
        cores = os.cpu_count() or 1  # torch's default: a thread per core
        rows.append(row("single process", 1, cores, len(files), every_core, baseline))
        for workers in args.workers:
            measured, start_s = on_cluster(workers, one_thread, files, work / f"ray-{workers}")
            rows.append(row("Ray", workers, 1, len(files), measured, baseline, start_s))

    title = f"{len(files)} FinanceBench-dev filings, first {args.pages or 'all'} pages each"
    print(f"\n## Ingest on Ray: {title}\n")
    headers = [
        "path",
        "workers",
        "threads each",
        "pages",
        "chunks",
        "cluster start s",
        "parse s",
        "embed + write s",
        "total s",
        "chunks/s",
        "× baseline time",
        "same chunks",
    ]
    print(
        benchlib.markdown_table(
            headers,
            [
                [
                    r.path,
                    r.workers,
                    r.threads_each,
                    r.pages,
                    r.chunks,
                    r.cluster_start_s,
                    r.parse_s,
                    r.update_s,
                    r.total_s,
                    r.chunks_per_s,
                    r.vs_baseline,
                    "yes" if r.same_chunks else "NO",
                ]
                for r in rows
            ],
        )
    )
    overhead = next(r.vs_baseline for r in rows if r.path == "Ray" and r.workers == 1)
    results: dict[str, Any] = {
        "files": [path.name for path in sources],
        "pages_per_file": args.pages,
        "rows": [asdict(r) for r in rows],
        "ray_overhead_at_one_worker": overhead,
    }
    print(
        "\nBaseline: the single process with one torch thread, as each Ray worker runs. Totals "
        "include model loads (one per Ray worker); cluster start is not in them. Ray at one "
        f"worker over the baseline: {benchlib.fmt(overhead)}×."
    )
    path = benchlib.write_results("ray_ingest", results)
    print(f"\nJSON: {path.relative_to(benchlib.REPO)}")
    return 0 if all(r.same_chunks for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
