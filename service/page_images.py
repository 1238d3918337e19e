"""Page images and highlight boxes for the page viewer: rendered once, then read from disk.

An image is keyed by what determines its bytes: the document's SHA-256 (not its id, which a new
version of the file keeps), the page, the width and `RENDER_VERSION`. The cache is shared by the
collections of a data root (`DATA/cache/pages/`), since equal bytes render equally whichever
collection holds them. A file is written under a temporary name and renamed into place, so a
reader sees a whole image or none; it is not fsynced, because a cache may lose an entry in a
crash, and an entry a crash left damaged (not a complete PNG) is rendered again. When the cache
passes its size, the oldest entries go.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from service.page_render import MEDIA_TYPE, PageBoxes, page_boxes, render_png
from service.pdf_workers import PdfWorkers

RENDER_VERSION = "r1"
"""Part of every cache key and ETag: change it when rendering changes (format, colours)."""
A4_WIDTH_150_DPI = 1240
"""A4 is 8.27 inches wide: 1240 pixels at 150 dpi, sharp on a laptop screen at full width."""
MIN_WIDTH = 200
MAX_WIDTH = 2400
"""A4 at 290 dpi: past any screen; the bound keeps one request from asking for a huge bitmap."""
CACHE_BYTES = 1024 * 1024 * 1024
"""About 6,000 pages at the default width."""
_PRUNE_EVERY = 64
"""Writes between two size checks: a check lists the whole cache."""
_PRUNE_TO = 0.8
_PNG_HEAD = b"\x89PNG\r\n\x1a\n"
_PNG_TAIL = b"IEND\xaeB`\x82"
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ImageKey:
    sha256: str
    page: int
    width: int

    def __post_init__(self) -> None:
        # The key names a path: only a hash, never text from a client, becomes a folder.
        if not _SHA256.fullmatch(self.sha256):
            raise ValueError(f"not a SHA-256: {self.sha256!r}")

    @property
    def etag(self) -> str:
        return f'"{RENDER_VERSION}-{self.sha256[:32]}-{self.page}-{self.width}"'


class PageCache:
    """Rendered pages under `directory`, `RENDER_VERSION/<sha256>/<page>-<width>.png`."""

    def __init__(self, directory: Path, max_bytes: int = CACHE_BYTES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._writes = 0

    def get(self, key: ImageKey) -> bytes | None:
        try:
            data = self._path(key).read_bytes()
        except OSError:
            return None
        return data if data.startswith(_PNG_HEAD) and data.endswith(_PNG_TAIL) else None

    def put(self, key: ImageKey, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".tmp-{secrets.token_hex(8)}")
        try:
            temporary.write_bytes(data)
            temporary.replace(path)
        finally:
            temporary.unlink(missing_ok=True)
        with self._lock:
            self._writes += 1
            due = self._writes % _PRUNE_EVERY == 0
        if due:
            self.prune()

    def prune(self) -> int:
        """Remove the oldest entries while the cache is over its size; how many went."""
        entries = []
        for path in self.directory.glob("*/*/*.png"):
            with contextlib.suppress(OSError):
                status = path.stat()
                entries.append((status.st_mtime, status.st_size, path))
        total = sum(size for _, size, _ in entries)
        if total <= self.max_bytes:
            return 0
        removed = 0
        for _, size, path in sorted(entries):
            if total <= self.max_bytes * _PRUNE_TO:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size
                removed += 1
        return removed

    def _path(self, key: ImageKey) -> Path:
        return self.directory / RENDER_VERSION / key.sha256 / f"{key.page}-{key.width}.png"


class PageImages:
    """Page images, cached, and highlight boxes, both made by PDFium in `workers`."""

    media_type = MEDIA_TYPE

    def __init__(self, cache: PageCache, workers: PdfWorkers) -> None:
        self.cache = cache
        self.workers = workers

    def image(self, original: Path, key: ImageKey) -> bytes:
        """The page of `original` (whose bytes hash to `key.sha256`) as `key` asks for it."""
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        data = self.workers.call(render_png, original, key.page, key.width)
        self.cache.put(key, data)
        return data

    def boxes(self, original: Path, page: int, stored_text: str, start: int, end: int) -> PageBoxes:
        """The boxes of `stored_text[start:end]` on page `page` of `original`."""
        return self.workers.call(page_boxes, original, page, stored_text, start, end)

    def close(self) -> None:
        self.workers.close()
