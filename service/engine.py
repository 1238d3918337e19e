"""The live index a service answers from, switched to a new version when an ingest lands.

Requests take a snapshot of the current version. When `current` moves, the request that notices
starts one background load and goes on with the old snapshot, as does everyone else, until the new
version is ready; then one reference assignment switches them all. A load under traffic takes
far longer than alone (the loader shares the interpreter with every request thread), and loading
on the request path made every request that arrived meanwhile wait for it. Only the very first
load, when there is nothing to answer from yet, happens on the request path.

The old snapshot is not closed at the switch: requests still running hold it, and closing its
SQLite connection would break them mid-query. Nothing else refers to it once the engine lets go,
so reference counting frees it (connection, FAISS index, memory maps) as soon as the last of
those requests returns; a timed grace would only guess at when that is. Its files stay readable
after a writer removes them: they are open, and POSIX keeps them until closed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

from index.embedder import Embedder
from index.modes import Mode
from index.retrieve import Hit, Retriever
from index.store import Index, StoreError, check_compatible, current_version, read_manifest
from service.answerers import Answerers, AnswerersFactory
from service.answering import Answer, AnswerPart
from service.errors import UnavailableError
from service.llm import LlmOptions

log = logging.getLogger("chancery")

LLM_MS = "llm_ms"
"""The signal in which an answerer reports the time it spent waiting on a model."""
DEFAULT_COLLECTION = "default"
"""The name of the one collection a service has until it serves several."""


class NoIndexError(UnavailableError):
    """There is no index to answer from yet."""


@dataclass(frozen=True)
class Snapshot:
    index: Index
    retriever: Retriever
    answerers: Answerers


@dataclass(frozen=True)
class AskResult:
    answer: Answer
    collection: str
    index_version: str
    timings_ms: dict[str, float]
    """Retrieval's stages, then `answer_ms`, `llm_ms` (the part of answering spent waiting on a
    model, for an answer a model wrote) and `total_ms`."""


@dataclass(frozen=True)
class Retrieved:
    """The first part of a streamed answer: what it is read from."""

    passages: list[Hit]
    collection: str
    index_version: str


AskPart = Retrieved | AnswerPart | AskResult
"""What `Engine.stream` yields: `Retrieved`, the answer's `Drafting` and `Sentence` parts, then
the `AskResult` (in place of the answer's last part, which it holds)."""


@dataclass(frozen=True)
class SearchHits:
    hits: list[Hit]
    collection: str
    index_version: str


@dataclass(frozen=True)
class LoadFailure:
    """A version that could not be loaded in the background; the old snapshot still answers."""

    version: Path
    error: Exception


Loader = Callable[[Path], Snapshot]
"""Opens one version folder (`root/v-...`) as a snapshot."""


def open_snapshot(version: Path, embedder: Embedder, answerers: AnswerersFactory) -> Snapshot:
    """The snapshot of one version, refused when another model built it."""
    manifest = read_manifest(version)
    check_compatible(manifest, embedder.identity, None, version.parent)
    index = Index(version, manifest)
    # Read now, while the version loads in the background, not by the first search after a swap.
    index.sentence_ranges()
    return Snapshot(index, Retriever(index, embedder), answerers(index, embedder))


class Engine:
    """Answers for one collection from the version `root/current` names, with the answerers
    `answerers` makes for each version. `load` opens a version (tests pass one they can hold
    back); `loading`, `failure` and `wait_for_swap` show a switch in progress."""

    def __init__(
        self,
        root: Path,
        embedder: Embedder,
        answerers: AnswerersFactory,
        load: Loader | None = None,
        *,
        collection: str = DEFAULT_COLLECTION,
    ) -> None:
        self.root = root
        self.embedder = embedder
        self.collection = collection
        self._answerers = answerers
        self._load = load or self._open
        self._first_load = threading.Lock()
        self._swap = threading.Lock()
        """Held to start a background load and to publish its outcome, never while loading."""
        self._snapshot: Snapshot | None = None
        self._loading: Path | None = None
        self._loader: threading.Thread | None = None
        self._failure: LoadFailure | None = None

    @property
    def loading(self) -> Path | None:
        """The version being loaded in the background, if any."""
        return self._loading

    @property
    def failure(self) -> LoadFailure | None:
        """The last version that failed to load, until a later one loads."""
        return self._failure

    def snapshot(self) -> Snapshot:
        version = current_version(self.root)
        if version is None:
            # No server path in the message: it goes to HTTP clients too.
            raise NoIndexError(
                f"the collection '{self.collection}' has no documents yet; upload some to it, "
                f"or add them with `chancery ingest --collection {self.collection} FILES`"
            )
        snapshot = self._snapshot
        if snapshot is None:
            snapshot = self._load_first(version)
        if self._wants(version):
            self._start_load()
        return snapshot

    def wait_for_swap(self, timeout: float | None = None) -> bool:
        """Wait for the background load in flight, if any; False if it is still running."""
        loader = self._loader
        if loader is not None:
            loader.join(timeout)
        return self._loading is None

    def _open(self, version: Path) -> Snapshot:
        return open_snapshot(version, self.embedder, self._answerers)

    def _load_first(self, version: Path) -> Snapshot:
        # Nothing to answer from yet, so the first requests wait; the lock makes them wait for
        # one load instead of each doing its own. A failure raises to each of them, as there is
        # nothing else to answer from, and the next request tries again.
        with self._first_load:
            snapshot = self._snapshot
            if snapshot is None:
                snapshot = self._load(version)
                self._snapshot = snapshot
            return snapshot

    def _wants(self, version: Path) -> bool:
        """Whether `version` should be loaded now; read without the lock on every request, so
        that requests arriving during a load do not queue on it."""
        snapshot, failure = self._snapshot, self._failure
        return (
            snapshot is not None
            and snapshot.index.directory != version
            # One load at a time: if `current` moves on during a load, the first check after
            # it ends starts the next.
            and self._loading is None
            # A version that failed was logged once; it is retried when `current` moves again.
            and (failure is None or failure.version != version)
        )

    def _start_load(self) -> None:
        with self._swap:
            # Read `current` again: a request that read it before a load finished could
            # otherwise start loading the version that load just replaced.
            version = current_version(self.root)
            if version is None or not self._wants(version):
                return  # another request started it, or it finished, since the unlocked check
            self._loading = version
            self._loader = threading.Thread(
                target=self._load_and_switch,
                args=(version,),
                name=f"chancery-load-{version.name}",
                daemon=True,
            )
            self._loader.start()

    def _load_and_switch(self, version: Path) -> None:
        try:
            snapshot = self._load(version)
        except Exception as exc:
            self._give_up(version, exc)
        else:
            with self._swap:
                self._snapshot = snapshot
                self._failure = None
        finally:
            with self._swap:
                self._loading = None

    def _give_up(self, version: Path, error: Exception) -> None:
        # The service keeps answering from the version it has; whoever fixes the index (or the
        # model) moves `current` again, and that starts a new load.
        old = self._snapshot
        log.error(
            "cannot switch to the index version %s, still answering from %s: %s",
            version,
            old.index.directory if old is not None else None,
            error,
            # A StoreError says what is wrong and what to do; anything else needs its traceback.
            exc_info=error if not isinstance(error, StoreError) else None,
        )
        with self._swap:
            self._failure = LoadFailure(version, error)

    def ask(
        self,
        question: str,
        k: int = 8,
        docs: list[str] | None = None,
        answerer: str | None = None,
        *,
        llm: LlmOptions | None = None,
    ) -> AskResult:
        for part in self.stream(question, k, docs, answerer, llm=llm):
            if isinstance(part, AskResult):
                return part
        raise AssertionError("a stream ends with its result")

    def stream(
        self,
        question: str,
        k: int = 8,
        docs: list[str] | None = None,
        answerer: str | None = None,
        *,
        llm: LlmOptions | None = None,
    ) -> Generator[AskPart, None, None]:
        """The answer of the answerer named (default: the service's), part by part; `llm`, this
        request's options for an answerer's LLM."""
        started = time.perf_counter()
        snapshot = self.snapshot()
        answerers = snapshot.answerers if llm is None else snapshot.answerers.tuned(llm)
        answerers.pick(answerer)  # an answerer this service lacks is refused before any work
        result = snapshot.retriever.search(question, k, Mode.HYBRID, docs)
        version = snapshot.index.version
        yield Retrieved(result.hits, self.collection, version)
        answering = time.perf_counter()
        parts = answerers.stream(
            question, result.hits, query_vector=result.query_vector, name=answerer
        )
        for part in parts:
            if isinstance(part, Answer):
                timings = dict(result.timings_ms)
                timings["answer_ms"] = _ms(answering)
                if LLM_MS in part.signals:
                    # An answerer that asked a model says how long it waited on it.
                    timings[LLM_MS] = part.signals[LLM_MS]
                timings["total_ms"] = _ms(started)
                yield AskResult(part, self.collection, version, timings)
            else:
                yield part

    def search(
        self,
        question: str,
        k: int = 10,
        mode: Mode = Mode.HYBRID,
        docs: list[str] | None = None,
        distinct_pages: bool = True,
    ) -> SearchHits:
        snapshot = self.snapshot()
        found = snapshot.retriever.search(question, k, mode, docs, distinct_pages)
        return SearchHits(found.hits, self.collection, snapshot.index.version)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
