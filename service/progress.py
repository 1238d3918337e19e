"""Progress on stderr while ingesting: files, pages and chunks per second (tqdm)."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from ingest.models import FileReport


class IngestProgress:
    def __init__(self) -> None:
        self._started = time.monotonic()
        self.files = self.pages = self.chunks = self.embedded = 0
        disable = not sys.stderr.isatty()
        self._files = tqdm(desc="parse", unit=" files", file=sys.stderr, disable=disable)
        self._embedding = tqdm(desc="embed", unit=" chunks", file=sys.stderr, disable=disable)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def file_done(self, report: FileReport) -> None:
        self.files += 1
        self.pages += report.pages
        self.chunks += report.chunks
        for warning in report.warnings:
            self.write(f"warning: {report.path}: {warning}")
        rate = self.pages / max(self.elapsed, 1e-9)
        self._files.set_postfix_str(f"{self.pages} pages ({rate:.0f}/s), {self.chunks} chunks")
        self._files.update(1)

    def chunks_embedded(self, count: int) -> None:
        self.embedded += count
        self._embedding.update(count)

    def write(self, message: str) -> None:
        tqdm.write(message, file=sys.stderr)

    def close(self) -> None:
        self._files.close()
        self._embedding.close()
