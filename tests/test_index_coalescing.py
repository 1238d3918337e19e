"""Concurrent embed calls share forward passes, each caller getting its own rows.

The wrapped embedder is the fake one behind a gate: its first pass blocks until the test has
queued every other call, so the batch that follows is known, not left to the scheduler."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest

from index.coalescing import CoalescingEmbedder
from index.embedder import Vectors
from tests.fakes import FakeEmbedder

WAIT = 60.0
"""Seconds a test waits for a thread before failing; no test measures time."""


class GatedEmbedder(FakeEmbedder):
    """Records each pass's texts; a pass waits while the gate is closed (cleared)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.inside = 0
        self.most_inside = 0
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Semaphore(0)
        self.fail_on: str | None = None
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Vectors:
        with self._lock:
            self.batches.append(list(texts))
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        self.entered.release()
        try:
            assert self.gate.wait(WAIT)
            if self.fail_on is not None and self.fail_on in texts:
                raise RuntimeError("the model failed")
            return super().embed(texts)
        finally:
            with self._lock:
                self.inside -= 1


def _in_thread(
    coalescer: CoalescingEmbedder, texts: list[str], out: dict[str, object]
) -> threading.Thread:
    def run() -> None:
        try:
            out[texts[0]] = coalescer.embed(texts)
        except RuntimeError as exc:
            out[texts[0]] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _wait_for(condition: object, what: str) -> None:
    assert callable(condition)
    deadline = threading.Event()
    for _ in range(int(WAIT * 100)):
        if condition():
            return
        deadline.wait(0.01)
    pytest.fail(f"waited {WAIT} s for {what}")


def test_a_lone_call_runs_at_once_and_returns_what_the_model_gives() -> None:
    inner = GatedEmbedder()
    coalescer = CoalescingEmbedder(inner)
    texts = ["gas storage", "border crossings"]
    assert np.array_equal(coalescer.embed(texts), FakeEmbedder().embed(texts))
    assert inner.batches == [texts] and coalescer.passes == 1


def _behind_a_held_pass(
    coalescer: CoalescingEmbedder, inner: GatedEmbedder, calls: list[list[str]]
) -> dict[str, object]:
    """Run `calls` while a first pass is held at the gate, so that all of them queue behind it;
    then open the gate and return what each call got (vectors or the error), by first text."""
    inner.gate.clear()
    out: dict[str, object] = {}
    first = _in_thread(coalescer, ["first question"], out)
    assert inner.entered.acquire(timeout=WAIT)  # the first pass is running, held at the gate
    threads = [_in_thread(coalescer, texts, out) for texts in calls]
    _wait_for(lambda: coalescer.queued == len(calls), "the calls to queue")
    inner.gate.set()
    for thread in [first, *threads]:
        thread.join(WAIT)
    return out


def test_calls_that_arrive_during_a_pass_share_the_next_one() -> None:
    inner = GatedEmbedder()
    coalescer = CoalescingEmbedder(inner, lanes=1)
    questions = [[f"question {n}", "shared words"] for n in range(8)]
    out = _behind_a_held_pass(coalescer, inner, questions)

    assert coalescer.passes == 2 and len(inner.batches) == 2
    # One pass for all eight, and "shared words" embedded once in it.
    assert len(inner.batches[1]) == len(questions) + 1
    for texts in questions:
        assert np.array_equal(out[texts[0]], FakeEmbedder().embed(texts))  # type: ignore[arg-type]


def test_a_batch_holds_at_most_max_batch_texts() -> None:
    inner = GatedEmbedder()
    coalescer = CoalescingEmbedder(inner, lanes=1, max_batch=3)
    out = _behind_a_held_pass(coalescer, inner, [[f"q{n}"] for n in range(7)])
    assert [len(batch) for batch in inner.batches] == [1, 3, 3, 1]
    assert all(isinstance(out[f"q{n}"], np.ndarray) for n in range(7))


def test_a_failed_pass_fails_each_of_its_calls_and_not_the_next() -> None:
    inner = GatedEmbedder()
    coalescer = CoalescingEmbedder(inner, lanes=1)
    inner.fail_on = "poison"
    out = _behind_a_held_pass(coalescer, inner, [["poison"], ["bystander"]])
    assert isinstance(out["poison"], RuntimeError) and isinstance(out["bystander"], RuntimeError)
    assert isinstance(out["first question"], np.ndarray)
    inner.fail_on = None
    assert coalescer.embed(["after"]).shape == (1, inner.identity.dimension)


def test_lanes_run_passes_side_by_side() -> None:
    inner = GatedEmbedder()
    inner.gate.clear()
    coalescer = CoalescingEmbedder(inner, lanes=2)
    out: dict[str, object] = {}
    threads = [_in_thread(coalescer, [name], out) for name in ("one", "two")]
    assert inner.entered.acquire(timeout=WAIT) and inner.entered.acquire(timeout=WAIT)
    assert inner.most_inside == 2
    inner.gate.set()
    for thread in threads:
        thread.join(WAIT)
    assert coalescer.passes == 2


def test_everything_else_is_the_wrapped_embedder() -> None:
    inner = GatedEmbedder()
    coalescer = CoalescingEmbedder(inner)
    assert coalescer.identity == inner.identity
    assert coalescer.embed_spans(["a b"], [[(0, 1)]])[1].shape == (1, inner.identity.dimension)
    assert coalescer.texts_embedded == inner.texts_embedded  # read through
    with pytest.raises(ValueError):
        CoalescingEmbedder(inner, lanes=0)
