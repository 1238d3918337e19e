"""Ingest progress: rates and an ETA in a log's lines, a bar with a total on a terminal. The clock
is injected, so that no test depends on how fast it runs."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from index.update import PlannedProgress, update_index
from ingest.models import FileReport, FileStatus
from service.progress import IngestProgress
from tests.fakes import CHUNKING, FakeEmbedder, fake_document


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeTerminal(io.StringIO):
    """Takes what tqdm draws, as a terminal would."""

    def isatty(self) -> bool:
        return True


def _parsed(progress: IngestProgress, pages: int, chunks: int) -> None:
    progress.file_done(FileReport(Path("a.pdf"), FileStatus.OK, pages=pages, chunks=chunks))


def test_a_log_line_gives_the_rate_since_the_first_batch_and_the_time_left() -> None:
    log, clock = io.StringIO(), FakeClock()
    progress = IngestProgress(stream=log, clock=clock, line_interval=5.0)
    _parsed(progress, pages=3, chunks=150)
    progress.embedding_planned(128)  # 22 of the parsed chunks are unchanged
    clock.now += 4.0  # the model loads: not part of the rate
    progress.chunks_embedded(64)
    clock.now += 2.0
    progress.chunks_embedded(32)  # within 5 s of the last line: quiet
    clock.now += 3.0
    progress.chunks_embedded(16)  # 48 chunks in 5 s: 9.6/s, and 16 left take 1.7 s
    clock.now += 1.0
    progress.chunks_embedded(16)
    progress.close()
    assert log.getvalue().splitlines() == [
        "parsed a.pdf: 3 pages, 150 chunks",
        "embedded 64 of 128 chunks",
        "embedded 112 of 128 chunks, 10 chunks/s, 00:02 left",
        "embedded 128 of 128 chunks, 11 chunks/s",
    ]


@pytest.mark.parametrize(
    ("planned", "left"), [(100_600, "16:40"), (1_000_600, "2:46:40"), (660, "00:01")]
)
def test_the_time_left_reads_like_the_bars_and_never_says_zero_too_early(
    planned: int, left: str
) -> None:
    log, clock = io.StringIO(), FakeClock()
    progress = IngestProgress(stream=log, clock=clock, line_interval=5.0)
    progress.embedding_planned(planned)
    progress.chunks_embedded(100)
    clock.now += 5.0
    progress.chunks_embedded(500)  # 100 chunks/s
    assert log.getvalue().splitlines()[-1] == (
        f"embedded 600 of {planned} chunks, 100 chunks/s, {left} left"
    )


def test_a_terminal_gets_pages_per_second_and_an_embedding_bar_with_a_total() -> None:
    terminal, clock = FakeTerminal(), FakeClock()
    progress = IngestProgress(stream=terminal, clock=clock)
    clock.now += 2.0
    _parsed(progress, pages=10, chunks=30)
    progress.embedding_planned(24)
    progress.chunks_embedded(24)
    progress.close()
    drawn = terminal.getvalue()
    assert "10 pages (5/s), 30 chunks" in drawn
    assert "0/24" in drawn and "24/24" in drawn and "chunks/s" in drawn
    assert "embedded " not in drawn  # the bar, not log lines


def test_update_index_plans_only_what_it_embeds(tmp_path: Path) -> None:
    log = io.StringIO()
    progress = IngestProgress(stream=log, clock=FakeClock())
    assert isinstance(progress, PlannedProgress)
    embedder = FakeEmbedder()
    energy = fake_document("energy.txt", "Gas storage is full.\fWind farms grow each year.")
    update_index(tmp_path, [energy], embedder, CHUNKING)
    border = fake_document("border.txt", "Astoria has four border crossings.")

    outcome = update_index(tmp_path, [energy, border], embedder, CHUNKING, progress=progress)
    progress.close()

    assert progress.planned == outcome.embedded_chunks == len(border[1])
    assert (
        log.getvalue()
        .splitlines()[-1]
        .startswith(f"embedded {len(border[1])} of {len(border[1])} chunks")
    )
