"""Chunk, page and document records in SQLite: what search results and citations are read from.

Row numbers of the `chunks` table are the row numbers of the vector and BM25 indexes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ingest.models import Chunk, Document, Heading, Page

_SCHEMA = """
CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY, file_name TEXT NOT NULL, title TEXT NOT NULL,
    sha256 TEXT NOT NULL, page_count INTEGER NOT NULL, ordinal INTEGER NOT NULL
);
CREATE TABLE pages (
    doc_id TEXT NOT NULL, number INTEGER NOT NULL, label TEXT, text TEXT NOT NULL,
    headings TEXT NOT NULL, footnotes_start INTEGER,
    PRIMARY KEY (doc_id, number)
);
CREATE TABLE chunks (
    row INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL, doc_id TEXT NOT NULL, text TEXT NOT NULL,
    page_start INTEGER NOT NULL, page_end INTEGER NOT NULL, heading_path TEXT NOT NULL,
    char_start INTEGER NOT NULL, char_end INTEGER NOT NULL, page_breaks TEXT NOT NULL,
    token_count INTEGER NOT NULL
);
CREATE INDEX chunks_by_doc ON chunks (doc_id);
CREATE TABLE sentences (
    row INTEGER PRIMARY KEY, chunk_row INTEGER NOT NULL, start INTEGER NOT NULL,
    "end" INTEGER NOT NULL
);
CREATE INDEX sentences_by_chunk ON sentences (chunk_row);
"""
_CHUNK_COLUMNS = (
    "chunk_id, doc_id, text, page_start, page_end, heading_path, char_start, char_end, "
    "page_breaks, token_count"
)


@dataclass(frozen=True)
class DocumentInfo:
    doc_id: str
    file_name: str
    title: str
    sha256: str
    page_count: int


@dataclass(frozen=True)
class SentenceSpan:
    """A sentence inside a chunk: rows index the sentence vectors and the chunk table."""

    row: int
    chunk_row: int
    start: int
    end: int


def write_records(
    path: Path,
    documents: Sequence[Document],
    chunks: Iterable[Chunk],
    sentences: Iterable[tuple[int, int, int]],
) -> None:
    """`sentences` are (chunk_row, start, end) in sentence-vector order."""
    connection = sqlite3.connect(path)
    try:
        connection.executescript(_SCHEMA)
        connection.executemany(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?)",
            [
                (d.doc_id, d.file_name, d.title, d.sha256, len(d.pages), i)
                for i, d in enumerate(documents)
            ],
        )
        connection.executemany(
            "INSERT INTO pages VALUES (?, ?, ?, ?, ?, ?)",
            [
                (d.doc_id, p.number, p.label, p.text, _headings_json(p.headings), p.footnotes_start)
                for d in documents
                for p in d.pages
            ],
        )
        connection.executemany(
            f"INSERT INTO chunks (row, {_CHUNK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    row,
                    c.chunk_id,
                    c.doc_id,
                    c.text,
                    c.page_start,
                    c.page_end,
                    json.dumps(c.heading_path, ensure_ascii=False),
                    c.char_start,
                    c.char_end,
                    json.dumps(c.page_breaks),
                    c.token_count,
                )
                for row, c in enumerate(chunks)
            ),
        )
        connection.executemany(
            'INSERT INTO sentences (row, chunk_row, start, "end") VALUES (?, ?, ?, ?)',
            ((row, *span) for row, span in enumerate(sentences)),
        )
        connection.commit()
    finally:
        connection.close()


class Records:
    """Read-only access, safe to share between the service's worker threads."""

    def __init__(self, path: Path) -> None:
        # immutable: a version's files never change once written, so SQLite need take no locks
        # (which are unreliable on the network file systems replicas may share).
        self._connection = sqlite3.connect(
            f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False
        )
        self._lock = threading.Lock()

    def close(self) -> None:
        self._connection.close()

    def _all(self, sql: str, parameters: Sequence[object] = ()) -> list[Any]:
        with self._lock:
            return self._connection.execute(sql, parameters).fetchall()

    def chunks(self, rows: Sequence[int]) -> dict[int, Chunk]:
        if not rows:
            return {}
        marks = ",".join("?" * len(rows))
        found = self._all(
            f"SELECT row, {_CHUNK_COLUMNS} FROM chunks WHERE row IN ({marks})", list(rows)
        )
        return {int(r[0]): _chunk(r[1:]) for r in found}

    def first_pages(self, rows: Sequence[int]) -> dict[int, tuple[str, int]]:
        """Each row's (doc id, page it starts on), without its text: enough to keep one passage
        a page out of a long ranking, at a fraction of reading the chunks."""
        if not rows:
            return {}
        marks = ",".join("?" * len(rows))
        found = self._all(
            f"SELECT row, doc_id, page_start FROM chunks WHERE row IN ({marks})", list(rows)
        )
        return {int(r[0]): (str(r[1]), int(r[2])) for r in found}

    def chunks_of(self, doc_id: str) -> list[tuple[int, Chunk]]:
        found = self._all(
            f"SELECT row, {_CHUNK_COLUMNS} FROM chunks WHERE doc_id = ? ORDER BY row", [doc_id]
        )
        return [(int(r[0]), _chunk(r[1:])) for r in found]

    def headings_of(self, doc_id: str) -> list[tuple[int, tuple[str, ...]]]:
        """Each chunk's row and heading path, in document order: a document's outline, without
        reading its text."""
        found = self._all(
            "SELECT row, heading_path FROM chunks WHERE doc_id = ? ORDER BY row", [doc_id]
        )
        return [(int(r[0]), tuple(json.loads(str(r[1])))) for r in found]

    def sentences_of(self, chunk_rows: Sequence[int]) -> list[SentenceSpan]:
        if not chunk_rows:
            return []
        marks = ",".join("?" * len(chunk_rows))
        found = self._all(
            f'SELECT row, chunk_row, start, "end" FROM sentences WHERE chunk_row IN ({marks}) '
            "ORDER BY row",
            list(chunk_rows),
        )
        return [SentenceSpan(*map(int, r)) for r in found]

    def sentence_ranges(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
        """For each chunk row, its first sentence row and one past its last (both 0: no
        sentence), when every chunk's sentences are consecutive rows, as versions are written;
        None when they are not, and `sentences_of` must be asked instead."""
        chunk_count = int(self._all("SELECT COUNT(*) FROM chunks")[0][0])
        found = np.array(
            self._all(
                "SELECT chunk_row, MIN(row), MAX(row), COUNT(*) FROM sentences GROUP BY chunk_row"
            ),
            dtype=np.int64,
        ).reshape(-1, 4)
        chunk_rows, first, last, count = found.T
        if np.any(last - first + 1 != count) or np.any(chunk_rows >= chunk_count):
            return None
        starts = np.zeros(chunk_count, dtype=np.int64)
        ends = np.zeros(chunk_count, dtype=np.int64)
        starts[chunk_rows] = first
        ends[chunk_rows] = last + 1
        return starts, ends

    def rows_of(self, doc_ids: Sequence[str]) -> list[int]:
        marks = ",".join("?" * len(doc_ids))
        found = self._all(f"SELECT row FROM chunks WHERE doc_id IN ({marks})", list(doc_ids))
        return [int(r[0]) for r in found]

    def documents(self) -> list[DocumentInfo]:
        found = self._all(
            "SELECT doc_id, file_name, title, sha256, page_count FROM documents ORDER BY ordinal"
        )
        return [DocumentInfo(*r) for r in found]

    def page_labels(self, pages: Sequence[tuple[str, int]]) -> dict[tuple[str, int], str | None]:
        """The printed label of each (doc id, page number) that exists."""
        if not pages:
            return {}
        wanted = sorted(set(pages))
        marks = ",".join("(?, ?)" for _ in wanted)
        found = self._all(
            f"SELECT doc_id, number, label FROM pages WHERE (doc_id, number) IN (VALUES {marks})",
            [value for key in wanted for value in key],
        )
        return {(str(row[0]), int(row[1])): row[2] for row in found}

    def page(self, doc_id: str, number: int) -> Page | None:
        found = self._all(
            "SELECT number, text, label, headings, footnotes_start FROM pages "
            "WHERE doc_id = ? AND number = ?",
            [doc_id, number],
        )
        return _page(found[0]) if found else None

    def pages(self, doc_id: str) -> list[Page]:
        found = self._all(
            "SELECT number, text, label, headings, footnotes_start FROM pages "
            "WHERE doc_id = ? ORDER BY number",
            [doc_id],
        )
        return [_page(r) for r in found]

    def document(self, doc_id: str) -> Document | None:
        info = next((d for d in self.documents() if d.doc_id == doc_id), None)
        if info is None:
            return None
        return Document(
            info.doc_id, info.file_name, info.title, info.sha256, tuple(self.pages(doc_id))
        )


def _headings_json(headings: Sequence[Heading]) -> str:
    return json.dumps([[h.text, h.level, h.start, h.end] for h in headings], ensure_ascii=False)


def _page(row: Any) -> Page:
    number, text, label, headings, footnotes_start = row
    return Page(
        number=int(number),
        text=str(text),
        label=None if label is None else str(label),
        headings=tuple(Heading(*h) for h in json.loads(str(headings))),
        footnotes_start=None if footnotes_start is None else int(footnotes_start),
    )


def _chunk(row: Any) -> Chunk:
    (
        chunk_id,
        doc_id,
        text,
        page_start,
        page_end,
        heading_path,
        char_start,
        char_end,
        page_breaks,
        token_count,
    ) = row
    return Chunk(
        chunk_id=str(chunk_id),
        doc_id=str(doc_id),
        text=str(text),
        page_start=int(page_start),
        page_end=int(page_end),
        heading_path=tuple(json.loads(str(heading_path))),
        char_start=int(char_start),
        char_end=int(char_end),
        page_breaks=tuple(json.loads(str(page_breaks))),
        token_count=int(token_count),
    )
