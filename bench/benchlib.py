"""Shared plumbing for the benchmark scripts: paths, timing, machine facts, tables and JSON output.

The machine the benchmarks run on is small and shared, so absolute timings drift between runs.
Every script therefore measures a baseline in the same run and reports ratios against it; the
helpers here keep that bookkeeping (medians, percentiles, result files) identical across scripts.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from eval.gold import GoldQuestion, load_gold

if TYPE_CHECKING:
    from index.embedder import Embedder
    from index.store import Index

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
RESULTS = REPO / "bench" / "results"
GOLD = REPO / "eval" / "gold" / "kcss.jsonl"
REFERENCE_PDF = "kcss-serbia-security-doctrine.pdf"
REFERENCE_TXT = "kcss-report-news.txt"
_LIBRARIES = (
    "pypdfium2",
    "pypdf",
    "torch",
    "sentence-transformers",
    "faiss-cpu",
    "bm25s",
    "langchain-community",
    "langchain-text-splitters",
    "numpy",
)

Cell = str | int | float | None
T = TypeVar("T")


def require_corpus() -> Path:
    """The reference corpus folder, or exit: benchmarks on another corpus are not comparable."""
    if not (CORPUS / REFERENCE_PDF).is_file() or not (CORPUS / REFERENCE_TXT).is_file():
        print(
            f"The reference corpus is missing: expected {REFERENCE_PDF} and {REFERENCE_TXT} "
            f"in {CORPUS}.",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return CORPUS


def quiet_libraries() -> None:
    """Offline model loading, and no progress bars or deprecation noise around the tables."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*deprecated.*")
    warnings.filterwarnings("ignore", message=".*sunset.*")


def timed(function: Callable[[], T]) -> tuple[T, float]:
    """The function's result and its wall time in seconds."""
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64)))


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def ratio(value: float, baseline: float) -> float | None:
    return value / baseline if baseline else None


def release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc), so the next RSS reading grows with the next
    allocation instead of hiding it in memory that earlier temporaries left resident."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def rss_mb() -> float:
    """Resident memory of this process (VmRSS), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "bf16": bool(flags & {"avx512_bf16", "amx_bf16"}),
        "load_average": _load_average(),
        "python": platform.python_version(),
        "libraries": versions,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _load_average() -> list[float] | None:
    """Other work on the machine at the time of writing: context for noisy timings."""
    try:
        return [float(part) for part in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


def fmt(value: Cell, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return value


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Cell]], digits: int = 2) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(cell, digits) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {"benchmark": name, "machine": machine_info(), **payload}
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def answerable_gold(path: Path = GOLD) -> list[GoldQuestion]:
    """The answerable gold questions: only they have pages to score retrieval against."""
    return [question for question in load_gold(path) if question.answerable]


def samples_generator() -> ModuleType:
    """samples/generate.py, imported by path: samples/ is a folder of scripts, not a package."""
    path = REPO / "samples" / "generate.py"
    spec = importlib.util.spec_from_file_location("chancery_samples_generate", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses in the module look themselves up here
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def corpus_index() -> Iterator[tuple[Index, Embedder]]:
    """The reference corpus indexed with the default settings in a temporary folder, loaded,
    and the embedder that built it; closed and removed afterwards."""
    import tempfile

    from index.store import load_index
    from service.build import build_ingester
    from service.settings import Settings

    corpus = require_corpus()
    ingester = build_ingester(Settings())
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        files = [corpus / REFERENCE_PDF, corpus / REFERENCE_TXT]
        ingester.update(root, ingester.parse(files).documents)
        index = load_index(root, ingester.embedder.identity)
        try:
            yield index, ingester.embedder
        finally:
            index.close()
