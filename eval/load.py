"""A load generator for the public HTTP API: a fixed list of requests sent by a fixed number of
concurrent clients, each request tagged with its own `X-Request-ID` so that what the server
acknowledged can be matched against what it recorded (the audit log) afterwards.

One asyncio loop drives every client over one connection pool: on a small machine, threads
would spend the cores the server needs. Nothing here measures the server's internals; the
outcome of each request is what a client saw.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

REQUEST_ID = "X-Request-ID"


@dataclass(frozen=True)
class Planned:
    """One request to send; `request_id` must be unique within a run."""

    request_id: str
    method: str
    path: str
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    request_id: str
    path: str
    status: int | None
    """None: no response came (the connection failed or was cut)."""
    error: str | None
    started: float
    """`time.perf_counter()` when it was sent."""
    seconds: float

    @property
    def acknowledged(self) -> bool:
        """The server answered with a success status: the request took effect."""
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class LoadResult:
    outcomes: tuple[Outcome, ...]
    seconds: float
    """Wall time of the whole run."""

    @property
    def requests_per_s(self) -> float:
        return len(self.outcomes) / self.seconds if self.seconds > 0 else 0.0

    def statuses(self) -> dict[int | None, int]:
        counts: dict[int | None, int] = {}
        for outcome in self.outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        return counts

    def latencies_ms(self) -> list[float]:
        return sorted(o.seconds * 1000 for o in self.outcomes if o.status is not None)


def plan(
    count: int,
    make: Callable[[int], tuple[str, str, Any]],
    *,
    headers: Mapping[str, str] | None = None,
    prefix: str = "load",
) -> list[Planned]:
    """`count` requests; `make(i)` gives the i-th one's (method, path, json body)."""
    planned = []
    for number in range(count):
        method, path, body = make(number)
        planned.append(Planned(f"{prefix}-{number:06d}", method, path, body, dict(headers or {})))
    return planned


def run_load(
    base_url: str,
    requests: Sequence[Planned],
    concurrency: int,
    *,
    timeout_s: float = 120.0,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> LoadResult:
    """Send `requests` from `concurrency` clients at once, each taking the next unsent one;
    `on_outcome` sees each outcome as it comes (from the loop's thread)."""
    return asyncio.run(_run(base_url, requests, concurrency, timeout_s, on_outcome))


async def _run(
    base_url: str,
    requests: Sequence[Planned],
    concurrency: int,
    timeout_s: float,
    on_outcome: Callable[[Outcome], None] | None,
) -> LoadResult:
    pending: Iterable[Planned] = iter(requests)
    outcomes: list[Outcome] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout_s, limits=limits) as client:

        async def client_loop() -> None:
            # One shared iterator: each client takes the next request when it is free.
            for planned in pending:
                outcome = await _send(client, planned)
                outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)

        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
    return LoadResult(tuple(outcomes), time.perf_counter() - started)


async def _send(client: httpx.AsyncClient, planned: Planned) -> Outcome:
    headers = {**planned.headers, REQUEST_ID: planned.request_id}
    sent = time.perf_counter()
    try:
        response = await client.request(
            planned.method, planned.path, json=planned.json, headers=headers
        )
        await response.aread()
    except httpx.HTTPError as exc:
        return Outcome(
            planned.request_id,
            planned.path,
            None,
            f"{type(exc).__name__}: {exc}",
            sent,
            time.perf_counter() - sent,
        )
    error = None if response.is_success else response.text[:500]
    return Outcome(
        planned.request_id,
        planned.path,
        response.status_code,
        error,
        sent,
        time.perf_counter() - sent,
    )
