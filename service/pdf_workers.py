"""PDFium calls of the HTTP service, made in worker processes of their own.

PDFium is not thread-safe: two calls at once, even on different documents, can corrupt its state
and crash the process (pypdfium2 says so and leaves the locking to the caller). The service calls
it from its request threads, and ingest jobs parse PDFs on threads of the same process, so page
images and highlight boxes are made in separate processes, where no lock is needed and a PDF that
crashes PDFium takes down a worker instead of the server. A broken pool is replaced on the next
call; a call that runs past its time has its workers killed (a stuck render cannot be cancelled
any other way) and is answered with an error.

Workers start with `spawn` (a fork of a process that runs threads can inherit a held lock) and
on first use, so a server that never shows a page never starts one. Like any `spawn` worker,
they import the main module of the process, so a script that serves the app must start it under
`if __name__ == "__main__":` (`chancery serve`, uvicorn and pytest do).
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

from service.errors import UnavailableError

P = ParamSpec("P")
T = TypeVar("T")

WORKERS = 2
"""Two renders at once: a page viewer asks for the page and its highlights together."""
TIMEOUT_S = 30.0
"""Far above any page seen (tens of milliseconds), far below a client giving up."""
TASKS_PER_WORKER = 1000
"""A worker is replaced after this many calls, so that memory PDFium keeps cannot grow."""


class PdfWorkerError(UnavailableError):
    """A worker crashed or ran out of time; the message says which."""


class PdfWorkers:
    """A small process pool for PDFium work; `call` runs a function in it and waits."""

    def __init__(self, workers: int = WORKERS, timeout_s: float = TIMEOUT_S) -> None:
        self._workers = workers
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    def call(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`function(*args)` in a worker; its exceptions are raised here as they were there."""
        return self.call_within(self._timeout_s, function, *args, **kwargs)

    def call_within(
        self, timeout_s: float, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`call`, given up after `timeout_s` seconds (which include starting a worker)."""
        pool = self._current()
        try:
            future: Future[T] = pool.submit(function, *args, **kwargs)
        except (BrokenProcessPool, RuntimeError, OSError) as exc:
            # RuntimeError: the main module started the server without the
            # `if __name__ == "__main__":` guard that spawned workers need.
            self._discard(pool)
            raise PdfWorkerError(f"the page renderer could not start: {exc}") from exc
        try:
            return future.result(timeout=timeout_s)
        except BrokenProcessPool as exc:
            self._discard(pool)
            raise PdfWorkerError(
                "the page renderer stopped while reading this PDF; try again, and if it fails "
                "again the file may be damaged"
            ) from exc
        except FutureTimeout as exc:
            self._discard(pool, kill=True)
            raise PdfWorkerError(
                f"the page renderer took more than {timeout_s:g} s on this page and was stopped"
            ) from exc

    def close(self) -> None:
        """Stop the workers (at shutdown); a later call is refused."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise PdfWorkerError("the server is shutting down")
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self._workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    max_tasks_per_child=TASKS_PER_WORKER,
                )
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor, *, kill: bool = False) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        if kill:
            # No public way to stop a running task (Python 3.14 adds terminate_workers); the
            # executor's process table is the only handle on its workers.
            processes = getattr(pool, "_processes", None) or {}
            for process in list(processes.values()):
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
