"""Progress on stderr while ingesting: tqdm bars on a terminal, plain lines in a log file."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm

from ingest.models import FileReport, FileStatus

LINE_INTERVAL_S = 5.0
"""The longest a log goes without an embedding line while batches keep arriving."""


class IngestProgress:
    def __init__(
        self,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        line_interval: float = LINE_INTERVAL_S,
    ) -> None:
        self._stream = stream or sys.stderr
        self._clock = clock
        self._line_interval = line_interval
        self._started = clock()
        self.files = self.pages = self.chunks = self.embedded = 0
        self.planned: int | None = None
        """How many chunks will be embedded in all, once the index update has worked it out."""
        # Bars redraw one line with carriage returns, which a log file keeps as one endless
        # line (or, with tqdm disabled, nothing at all); a log gets whole lines instead.
        self._lines = not self._stream.isatty()
        self._files = tqdm(desc="parse", unit=" files", file=self._stream, disable=self._lines)
        self._embedding = tqdm(desc="embed", unit=" chunks", file=self._stream, disable=self._lines)
        self._first_batch: tuple[float, int] | None = None
        """When the first batch of vectors arrived, and how many it held: the rate counts
        from there, so that parsing and the model load do not drag it down."""
        self._last_line: float | None = None
        self._last_line_count = 0

    @property
    def elapsed(self) -> float:
        return self._clock() - self._started

    def file_done(self, report: FileReport) -> None:
        self.files += 1
        self.pages += report.pages
        self.chunks += report.chunks
        for warning in report.warnings:
            self.write(f"warning: {report.path}: {warning}")
        if self._lines:
            # Failed and skipped files are listed, with their reasons, when the ingest ends.
            if report.status is FileStatus.OK:
                self.write(f"parsed {report.path}: {report.pages} pages, {report.chunks} chunks")
            return
        rate = self.pages / max(self.elapsed, 1e-9)
        self._files.set_postfix_str(f"{self.pages} pages ({rate:.0f}/s), {self.chunks} chunks")
        self._files.update(1)

    def embedding_planned(self, chunks: int) -> None:
        """Hears, before the first batch, how many chunks need vectors (unchanged files and
        reused chunks left out), so that the bar and the log lines can show an ETA."""
        self.planned = chunks
        if not self._lines:
            self._embedding.reset(total=chunks)

    def chunks_embedded(self, count: int) -> None:
        self.embedded += count
        if not self._lines:
            self._embedding.update(count)
            return
        now = self._clock()
        if self._first_batch is None:
            self._first_batch = (now, self.embedded)
            self._embedded_line(now)
        elif self._last_line is None or now - self._last_line >= self._line_interval:
            self._embedded_line(now)

    def write(self, message: str) -> None:
        tqdm.write(message, file=self._stream)

    def close(self) -> None:
        if self._lines and self.embedded > self._last_line_count:
            self._embedded_line(self._clock())
        self._files.close()
        self._embedding.close()

    def _embedded_line(self, now: float) -> None:
        if self.planned is None:
            line = f"embedded {self.embedded} chunks (of {self.chunks} parsed)"
        else:
            line = f"embedded {self.embedded} of {self.planned} chunks"
        rate = self._embedding_rate(now)
        if rate is not None:
            line += f", {rate:.0f} chunks/s"
            if self.planned is not None and self.embedded < self.planned:
                line += f", {_eta(self.planned - self.embedded, rate)} left"
        self.write(line)
        self._last_line, self._last_line_count = now, self.embedded

    def _embedding_rate(self, now: float) -> float | None:
        """Chunks per second since the first batch; None until a second batch has come."""
        if self._first_batch is None:
            return None
        since, counted = self._first_batch
        if now <= since or self.embedded <= counted:
            return None
        return (self.embedded - counted) / (now - since)


def _eta(remaining: int, rate: float) -> str:
    """The time left as the bars write it: 01:05, or 2:03:10 past an hour."""
    # Rounded up: "00:00 left" while chunks remain would read as done.
    minutes, seconds = divmod(math.ceil(remaining / rate), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"
