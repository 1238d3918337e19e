"""Concurrent `embed` calls share forward passes: a server's questions, embedded together.

One short question costs a transformer forward pass of its own, most of which is fixed cost
(weights read, kernels started) that a batch of sixteen shares. A server answers many questions
at once, each on its own worker thread; this wrapper queues their texts, and whichever caller
finds a lane free takes everything queued (up to `max_batch` texts) into one pass, while the
others wait for their rows. Under no load a call runs at once, alone, so nothing waits for
company; under load, batches form by themselves from the calls that arrived during the previous
pass (the group commit of databases). `lanes` passes may run at once (one per core the model's
threads leave free).

A text's vector from a batch can differ from its vector alone in the last bits (other matrix
shapes, other summation order); answers do not move with that (cosines are rounded before
sentences are ranked).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from index.embedder import Embedder, EmbedderIdentity, Vectors


@dataclass
class _Call:
    texts: Sequence[str]
    done: bool = False
    vectors: Vectors | None = None
    error: BaseException | None = None
    rows: list[int] = field(default_factory=list)


class CoalescingEmbedder:
    """An `Embedder` whose `embed` batches concurrent calls; `embed_spans` (ingest) passes
    through, as do any other attributes of the wrapped embedder."""

    def __init__(self, inner: Embedder, *, lanes: int = 1, max_batch: int = 64) -> None:
        if lanes < 1 or max_batch < 1:
            raise ValueError("lanes and max_batch must be at least 1")
        self.inner = inner
        self._lanes = lanes
        self._max_batch = max_batch
        self._changed = threading.Condition()
        self._queue: list[_Call] = []
        self._running = 0
        self.passes = 0
        """Forward passes run (batches), for tests and benchmarks."""

    @property
    def queued(self) -> int:
        """Calls waiting for a pass."""
        with self._changed:
            return len(self._queue)

    @property
    def identity(self) -> EmbedderIdentity:
        return self.inner.identity

    def __getattr__(self, name: str) -> object:
        # Only reached for attributes this class lacks: `load`, `calls`, `load_seconds`, ...
        return getattr(self.inner, name)

    def embed_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[Vectors, Vectors]:
        return self.inner.embed_spans(texts, spans)

    def embed(self, texts: Sequence[str]) -> Vectors:
        call = _Call(list(texts))
        with self._changed:
            self._queue.append(call)
            while not call.done:
                if self._running < self._lanes and self._queue:
                    batch = self._take()
                    self._running += 1
                    self._changed.release()
                    try:
                        self._run(batch)
                    finally:
                        self._changed.acquire()
                        self._running -= 1
                        self._changed.notify_all()
                else:
                    self._changed.wait()
        if call.error is not None:
            raise call.error
        assert call.vectors is not None
        return call.vectors

    def _take(self) -> list[_Call]:
        """The calls at the front of the queue, up to `max_batch` texts (always at least one)."""
        taken = 0
        count = 0
        for call in self._queue:
            if count and taken + len(call.texts) > self._max_batch:
                break
            taken += len(call.texts)
            count += 1
        batch, self._queue = self._queue[:count], self._queue[count:]
        return batch

    def _run(self, batch: list[_Call]) -> None:
        # The same text asked twice (two readers, one question) is embedded once.
        unique: dict[str, int] = {}
        for call in batch:
            call.rows = [unique.setdefault(text, len(unique)) for text in call.texts]
        error: BaseException | None = None
        vectors: Vectors | None = None
        try:
            vectors = self.inner.embed(list(unique))
        except BaseException as exc:  # handed to every caller of the batch, re-raised there
            error = exc
        with self._changed:
            self.passes += 1
            for call in batch:
                if error is None and vectors is not None:
                    call.vectors = np.ascontiguousarray(vectors[call.rows], dtype=np.float32)
                call.error = error
                call.done = True
