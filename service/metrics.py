"""Prometheus metrics for `GET /metrics`: requests, answer stages, abstentions, ingest, indexes.

prometheus-client, the reference client: it gets the exposition format, the histogram series and
the thread safety right, and Prometheus, Grafana Agent and OpenTelemetry collectors all read
what it writes. Every metric lives in the `CollectorRegistry` of one `Metrics` object, never the
library's global registry, so two apps in one process (tests do this) count apart and a metric
is never registered twice.

The size and version of each collection's index are not counted as they change: they are read
when Prometheus scrapes (`index_stats`), so an ingest run by the CLI, outside the server, shows
at the next scrape, and a deleted collection disappears.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.route_template import route_template

log = logging.getLogger("chancery")

UNMATCHED = "<unmatched>"
"""The route label of requests no route served: no template matched, or a middleware answered
first (Host check, rate limit). Raw paths would make a series per URL anyone cares to try."""
OTHER = "<other>"
"""The route label of requests served by something that is not an API route (static files)."""
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_RETRIEVAL_TIMINGS = ("embed_ms", "dense_ms", "lexical_ms", "sentences_ms", "fuse_ms")


class Stage(StrEnum):
    RETRIEVAL = "retrieval"
    ANSWERING = "answering"
    LLM = "llm"
    TOTAL = "total"


@dataclass(frozen=True)
class IndexStats:
    collection: str
    version: str | None
    """None before the first ingest: the collection is then reported with 0 chunks."""
    documents: int
    chunks: int


class Metrics:
    """The service's metrics; `index_stats` lists the collections' indexes at scrape time."""

    def __init__(self, index_stats: Callable[[], Iterable[IndexStats]] | None = None) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "chancery_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "chancery_http_request_duration_seconds",
            "Time from receiving a request to the end of its response (streams included).",
            ["route", "method"],
            buckets=_SECONDS,
            registry=registry,
        )
        self.stage_seconds = Histogram(
            "chancery_answer_stage_duration_seconds",
            "Time an answer spent in each stage: retrieval, answering, llm (within answering), "
            "total.",
            ["stage", "answerer"],
            buckets=_SECONDS,
            registry=registry,
        )
        self.answers = Counter(
            "chancery_answers",
            "Answers given (abstentions included).",
            ["collection", "answerer"],
            registry=registry,
        )
        self.abstentions = Counter(
            "chancery_abstentions",
            "Answers that declined: the documents did not answer.",
            ["collection", "answerer"],
            registry=registry,
        )
        self.dropped_sentences = Counter(
            "chancery_verification_dropped_sentences",
            "Sentences an answerer wrote that verification removed (unsupported or misquoted).",
            ["collection", "answerer"],
            registry=registry,
        )
        self.ingest_jobs = Counter(
            "chancery_ingest_jobs",
            "Ingest jobs finished, by outcome.",
            ["collection", "outcome"],
            registry=registry,
        )
        self.ingest_pages = Counter(
            "chancery_ingest_pages",
            "Pages ingested by jobs.",
            ["collection"],
            registry=registry,
        )
        if index_stats is not None:
            registry.register(_IndexCollector(index_stats))

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.request_seconds.labels(route, method).observe(seconds)

    def observe_answer(
        self,
        *,
        collection: str,
        answerer: str,
        abstained: bool,
        dropped: int,
        stages: Mapping[Stage, float],
    ) -> None:
        """One answer: `stages` in seconds (see `stages_from_timings`), `dropped` sentences."""
        self.answers.labels(collection, answerer).inc()
        if abstained:
            self.abstentions.labels(collection, answerer).inc()
        if dropped:
            self.dropped_sentences.labels(collection, answerer).inc(dropped)
        for stage, seconds in stages.items():
            self.stage_seconds.labels(stage.value, answerer).observe(seconds)

    def observe_job(self, *, collection: str, outcome: str, pages: int) -> None:
        self.ingest_jobs.labels(collection, outcome).inc()
        if pages:
            self.ingest_pages.labels(collection).inc(pages)


def stages_from_timings(timings_ms: Mapping[str, float]) -> dict[Stage, float]:
    """An answer's `timings_ms` (as `/ask` returns them) as seconds per stage: retrieval is the
    sum of its parts; `llm_ms`, when the answerer reports it, is the LLM's share of answering."""
    stages: dict[Stage, float] = {}
    retrieval = [timings_ms[name] for name in _RETRIEVAL_TIMINGS if name in timings_ms]
    if retrieval:
        stages[Stage.RETRIEVAL] = sum(retrieval) / 1000
    for stage, name in ((Stage.ANSWERING, "answer_ms"), (Stage.LLM, "llm_ms")):
        if name in timings_ms:
            stages[stage] = timings_ms[name] / 1000
    if "total_ms" in timings_ms:
        stages[Stage.TOTAL] = timings_ms["total_ms"] / 1000
    return stages


def render(metrics: Metrics) -> tuple[bytes, str]:
    """The exposition (Prometheus text format) and its content type."""
    return generate_latest(metrics.registry), CONTENT_TYPE_LATEST


class RequestMetrics:
    """Pure-ASGI middleware counting each HTTP request by route template, method and status, and
    timing it to the end of its response. Install it inside the error handling, so a refused
    request (401, 429) is counted with its status."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, *, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.app = app
        self.metrics = metrics
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = self._clock()
        status = 500  # what the server sends when the app fails before starting a response

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe_request(
                route_label(scope), scope["method"], status, self._clock() - started
            )


def route_label(scope: Scope) -> str:
    """The template of the route that served the request, its prefix included."""
    path = route_template(scope)
    if path is not None:
        return path
    return OTHER if "endpoint" in scope else UNMATCHED


class _IndexCollector(Collector):
    def __init__(self, index_stats: Callable[[], Iterable[IndexStats]]) -> None:
        self._index_stats = index_stats

    def collect(self) -> Iterator[Metric]:
        try:
            listed = list(self._index_stats())
        except Exception:
            # A collection being deleted mid-scrape must not fail the other metrics.
            log.warning("metrics: could not list the indexes", exc_info=True)
            return
        version = InfoMetricFamily(
            "chancery_index", "The index version each collection serves.", labels=["collection"]
        )
        documents = GaugeMetricFamily(
            "chancery_index_documents",
            "Documents in each collection's index.",
            labels=["collection"],
        )
        chunks = GaugeMetricFamily(
            "chancery_index_chunks", "Chunks in each collection's index.", labels=["collection"]
        )
        for stats in listed:
            version.add_metric([stats.collection], {"version": stats.version or ""})
            documents.add_metric([stats.collection], stats.documents)
            chunks.add_metric([stats.collection], stats.chunks)
        yield from (version, documents, chunks)

    def describe(self) -> Iterator[Metric]:
        # Declared as nothing, so registering never calls `index_stats` (it reads the disk).
        return iter(())
