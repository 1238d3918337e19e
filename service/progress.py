"""Progress on stderr while ingesting: tqdm bars on a terminal, plain lines in a log file."""

from __future__ import annotations

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
        line = f"embedded {self.embedded} chunks (of {self.chunks} parsed)"
        if self._first_batch is not None:
            since, counted = self._first_batch
            if now > since and self.embedded > counted:
                line += f", {(self.embedded - counted) / (now - since):.0f} chunks/s"
        self.write(line)
        self._last_line, self._last_line_count = now, self.embedded
