"""What each command costs to start: only commands that embed load torch and the model; `--help`
loads none of the heavy libraries; a log file gets progress lines instead of bars."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.models import FileReport, FileStatus
from service.progress import IngestProgress

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "northland-energy-brief.md"
HEAVY = ("torch", "sentence_transformers", "transformers", "faiss", "eval")
_MARK = "imported-heavy:"

# Runs the command line as `chancery` does, then reports which heavy modules it imported.
_PROBE = f"""
import sys
from service.cli import run
sys.argv[0] = "chancery"
code = run(sys.argv[1:])
heavy = [name for name in {HEAVY!r} if name in sys.modules]
print({_MARK!r} + ",".join(heavy), file=sys.stderr)
sys.exit(code)
"""


class Outcome:
    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        lines = result.stderr.splitlines()
        assert lines and lines[-1].startswith(_MARK), result.stderr
        self.code = result.returncode
        self.stdout = result.stdout
        self.stderr = "\n".join(lines[:-1])
        self.heavy = {name for name in lines[-1].removeprefix(_MARK).split(",") if name}


def chancery(*args: str) -> Outcome:
    """The command in its own process, whose stderr (a pipe) is not a terminal."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    return Outcome(result)


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Outcome]:
    root = tmp_path_factory.mktemp("startup") / "index"
    return root, chancery("ingest", str(SAMPLE), "--index", str(root))


def test_help_imports_nothing_heavy_and_reads_plainly() -> None:
    outcome = chancery("--help")
    assert outcome.code == 0, outcome.stderr
    assert outcome.heavy == set()
    assert "Usage: chancery [OPTIONS] COMMAND" in outcome.stdout
    assert "<bool>" not in outcome.stdout


def test_ingest_help_names_its_argument_paths() -> None:
    outcome = chancery("ingest", "--help")
    assert outcome.code == 0, outcome.stderr
    assert outcome.heavy == set()
    assert "Usage: chancery ingest [OPTIONS] PATHS..." in outcome.stdout
    assert "{paths}" not in outcome.stdout and "<bool>" not in outcome.stdout


def test_inspect_loads_no_model() -> None:
    outcome = chancery("inspect", str(SAMPLE), "--chunks")
    assert outcome.code == 0, outcome.stderr
    assert "Northland Energy Security Brief" in outcome.stdout
    assert not outcome.heavy & {"torch", "sentence_transformers", "transformers"}


def test_ingest_of_an_empty_file_fails_at_once_without_the_model(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.touch()
    outcome = chancery("ingest", str(empty), "--index", str(tmp_path / "index"))
    assert outcome.code == 1
    assert outcome.stderr == f"failed: {empty}: the file is empty"
    assert "torch" not in outcome.heavy


def test_ingest_loads_the_model_to_embed_and_says_how_long_it_took(
    sample_index: tuple[Path, Outcome],
) -> None:
    _, outcome = sample_index
    assert outcome.code == 0, outcome.stderr
    assert "torch" in outcome.heavy  # the probe can see torch, so its absence elsewhere counts
    assert "1 added" in outcome.stdout and "(model load " in outcome.stdout
    # stderr is a pipe here, as in a log file: whole lines, no bars.
    assert f"parsed {SAMPLE}: 3 pages" in outcome.stderr
    assert "embedded " in outcome.stderr and "\r" not in outcome.stderr


def test_bm25_search_and_remove_load_no_model(sample_index: tuple[Path, Outcome]) -> None:
    root, _ = sample_index
    search = chancery("search", "energy imports", "--mode", "bm25", "--index", str(root))
    assert search.code == 0, search.stderr
    assert "northland-energy-brief.md" in search.stdout
    assert "torch" not in search.heavy
    reingest = chancery("ingest", str(SAMPLE), "--index", str(root))
    assert reingest.code == 0, reingest.stderr
    assert "1 unchanged" in reingest.stdout and "model load" not in reingest.stdout
    assert "torch" not in reingest.heavy
    removed = chancery("remove", SAMPLE.name, "--index", str(root))
    assert removed.code == 0, removed.stderr
    assert f"removed {SAMPLE.name}" in removed.stdout
    assert "torch" not in removed.heavy


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_log_gets_a_line_per_file_and_one_every_few_seconds_of_embedding() -> None:
    log, clock = io.StringIO(), FakeClock()
    progress = IngestProgress(stream=log, clock=clock, line_interval=5.0)
    progress.file_done(FileReport(Path("a.pdf"), FileStatus.OK, pages=3, chunks=100))
    progress.file_done(FileReport(Path("b.txt"), FileStatus.FAILED, reason="the file is empty"))
    progress.file_done(FileReport(Path("c.md"), FileStatus.OK, pages=1, chunks=28))
    clock.now += 4.0  # the model loads
    progress.chunks_embedded(64)
    clock.now += 2.0
    progress.chunks_embedded(32)  # within 5 s of the last line: quiet
    clock.now += 3.0
    progress.chunks_embedded(16)
    clock.now += 1.0
    progress.chunks_embedded(16)
    progress.close()
    assert log.getvalue().splitlines() == [
        "parsed a.pdf: 3 pages, 100 chunks",
        "parsed c.md: 1 pages, 28 chunks",
        "embedded 64 chunks (of 128 parsed)",
        "embedded 112 chunks (of 128 parsed), 10 chunks/s",
        "embedded 128 chunks (of 128 parsed), 11 chunks/s",
    ]
    assert progress.elapsed == pytest.approx(10.0)
