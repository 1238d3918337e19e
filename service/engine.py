"""The live index a service answers from, switched to a new version when an ingest lands.

Requests take a snapshot of the current version; when `current` moves, the next request loads
the new version while requests already running finish on the old one (its files stay readable
after the writer removes them: they are open, and POSIX keeps them until closed).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from index.embedder import Embedder
from index.retrieve import Hit, Mode, Retriever
from index.store import Index, current_version, load_index
from service.answer import Answer, AnswerConfig, ExtractiveAnswerer
from service.schemas import AskResponse, CitationOut, HitOut


class NoIndexError(Exception):
    """There is no index to answer from yet."""


@dataclass(frozen=True)
class Snapshot:
    index: Index
    retriever: Retriever
    answerer: ExtractiveAnswerer


class Engine:
    def __init__(self, root: Path, embedder: Embedder, answer_config: AnswerConfig) -> None:
        self.root = root
        self.embedder = embedder
        self._answer_config = answer_config
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None

    def snapshot(self) -> Snapshot:
        version = current_version(self.root)
        if version is None:
            raise NoIndexError(f"no index in {self.root} yet; run `chancery ingest` to build one")
        snapshot = self._snapshot
        if snapshot is not None and snapshot.index.directory == version:
            return snapshot
        with self._lock:
            snapshot = self._snapshot
            if snapshot is None or snapshot.index.directory != current_version(self.root):
                index = load_index(self.root, self.embedder.identity)
                snapshot = Snapshot(
                    index,
                    Retriever(index, self.embedder),
                    ExtractiveAnswerer(index, self.embedder, self._answer_config),
                )
                self._snapshot = snapshot
            return snapshot

    def ask(self, question: str, k: int = 8, docs: list[str] | None = None) -> AskResponse:
        started = time.perf_counter()
        snapshot = self.snapshot()
        result = snapshot.retriever.search(question, k, Mode.HYBRID, docs)
        answered = time.perf_counter()
        answer = snapshot.answerer.answer(question, result)
        timings = dict(result.timings_ms)
        timings["answer_ms"] = _ms(answered)
        timings["total_ms"] = _ms(started)
        return ask_response(answer, snapshot.index.version, timings)

    def search(
        self,
        question: str,
        k: int = 10,
        mode: Mode = Mode.HYBRID,
        docs: list[str] | None = None,
        distinct_pages: bool = False,
    ) -> list[HitOut]:
        retriever = self.snapshot().retriever
        return [hit_out(h) for h in retriever.search(question, k, mode, docs, distinct_pages).hits]


def hit_out(hit: Hit) -> HitOut:
    return HitOut(
        chunk_id=hit.chunk.chunk_id,
        doc=hit.file_name,
        page_start=hit.chunk.page_start,
        page_end=hit.chunk.page_end,
        heading=hit.heading,
        text=hit.chunk.text,
        score=round(hit.score, 6),
    )


def ask_response(answer: Answer, version: str, timings: dict[str, float]) -> AskResponse:
    return AskResponse(
        answer=answer.text,
        abstained=answer.abstained,
        citations=[
            CitationOut(
                n=n,
                doc=c.doc,
                title=c.title,
                page=c.page,
                page_label=c.page_label,
                quote=c.quote,
                chunk_id=c.chunk_id,
                score=c.score,
            )
            for n, c in enumerate(answer.citations, start=1)
        ],
        passages=[hit_out(hit) for hit in answer.passages],
        index_version=version,
        timings_ms=timings,
    )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
