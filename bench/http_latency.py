"""HTTP latency of the real service: /v1/search and /v1/ask at concurrency 1 and 16.

`chancery serve` runs in its own process on an index of the reference corpus; this script is
the client, on the same machine. Each endpoint gets 100 requests one at a time, then 200 from 16
threads at once, cycling through a fixed list of gold questions. The in-run baseline is
GET /healthz under the same load: on a small shared machine, absolute times drift between runs,
and the ratio to /healthz says what the question answering itself costs. The target reported
against: /v1/ask p50 under 50 ms at concurrency 1.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import benchlib
import httpx

from service import subprocess_server

QUESTIONS = 20
LOADS = ((1, 100), (16, 200))
"""(concurrency, requests) for each endpoint."""
ENDPOINTS = ("healthz", "search", "ask")
ASK_TARGET_MS = 50.0
STARTUP_SECONDS = 180
REQUEST_SECONDS = 300


@dataclass(frozen=True)
class Measurement:
    endpoint: str
    concurrency: int
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float
    requests_per_s: float
    server_p50_ms: float | None
    """Median of the server's own `timings_ms.total_ms` (/v1/ask only)."""
    vs_healthz: float | None = None
    """p50 over the /healthz p50 at the same concurrency."""


# -- the server ----------------------------------------------------------------------------------


def build_index(corpus: Path, root: Path) -> None:
    files = [corpus / benchlib.REFERENCE_PDF, corpus / benchlib.REFERENCE_TXT]
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "ingest", *map(str, files), "--index", str(root)],
        capture_output=True,
        text=True,
        cwd=benchlib.REPO,
        env=subprocess_server.child_environment(),
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"building the index failed:\n{result.stderr}")


@contextlib.contextmanager
def running_server(index: Path, log: Path, env: dict[str, str]) -> Iterator[str]:
    """`chancery serve` on `index`; a server that dies or never gets ready ends the benchmark."""
    try:
        with subprocess_server.running_server(
            index, log, startup_seconds=STARTUP_SECONDS, env=env, cwd=benchlib.REPO
        ) as base_url:
            yield base_url
    except subprocess_server.ServerStartError as exc:
        raise SystemExit(str(exc)) from exc


# -- the client ----------------------------------------------------------------------------------


def _send(http: httpx.Client, endpoint: str, question: str) -> tuple[int, float | None]:
    """Status code and, for /v1/ask, the server's own total time."""
    if endpoint == "healthz":
        return http.get("/healthz").status_code, None
    response = http.post(f"/v1/{endpoint}", json={"question": question})
    if endpoint == "ask" and response.status_code == 200:
        return 200, float(response.json()["timings_ms"]["total_ms"])
    return response.status_code, None


def measure(
    base_url: str, endpoint: str, concurrency: int, count: int, questions: Sequence[str]
) -> Measurement:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(base_url=base_url, timeout=REQUEST_SECONDS, limits=limits) as http:

        def one(number: int) -> tuple[float, int, float | None]:
            started = time.perf_counter()
            try:
                status, server_ms = _send(http, endpoint, questions[number % len(questions)])
            except httpx.HTTPError:
                status, server_ms = 0, None
            return time.perf_counter() - started, status, server_ms

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            results = list(pool.map(one, range(count)))
        wall = time.perf_counter() - started
    latencies = [seconds * 1000 for seconds, _, _ in results]
    server = [ms for _, _, ms in results if ms is not None]
    return Measurement(
        endpoint=endpoint,
        concurrency=concurrency,
        requests=count,
        errors=sum(status != 200 for _, status, _ in results),
        p50_ms=benchlib.percentile(latencies, 50),
        p95_ms=benchlib.percentile(latencies, 95),
        requests_per_s=count / wall,
        server_p50_ms=benchlib.median(server) if server else None,
    )


def warm_up(base_url: str, questions: Sequence[str]) -> None:
    """First-call costs (the index snapshot, torch kernels, connections) stay out of the table."""
    with httpx.Client(base_url=base_url, timeout=REQUEST_SECONDS) as http:
        for question in questions:
            for endpoint in ENDPOINTS:
                _send(http, endpoint, question)


# -- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--index", type=Path, help="an existing corpus index (default: build one)")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the server process, e.g. OMP_NUM_THREADS=1 (repeatable)",
    )
    args = parser.parse_args(argv)
    server_env = dict(item.split("=", 1) for item in args.server_env)
    corpus = benchlib.require_corpus()
    benchlib.quiet_libraries()
    questions = [q.question for q in benchlib.answerable_gold()[:QUESTIONS]]

    with tempfile.TemporaryDirectory(prefix="chancery-http-") as scratch:
        index = args.index
        if index is None:
            index = Path(scratch) / "index"
            build_index(corpus, index)
        with running_server(index, Path(scratch) / "server.log", server_env) as base_url:
            warm_up(base_url, questions)
            measured = [
                measure(base_url, endpoint, concurrency, count, questions)
                for concurrency, count in LOADS
                for endpoint in ENDPOINTS
            ]
    baseline = {m.concurrency: m.p50_ms for m in measured if m.endpoint == "healthz"}
    measured = [
        replace(m, vs_healthz=benchlib.ratio(m.p50_ms, baseline[m.concurrency])) for m in measured
    ]
    report(measured, server_env)
    ask_p50 = next(m.p50_ms for m in measured if m.endpoint == "ask" and m.concurrency == 1)
    payload: dict[str, Any] = {
        "questions": questions,
        "server_env": server_env,
        "target": {
            "ask_p50_ms_at_concurrency_1": ASK_TARGET_MS,
            "measured_ms": ask_p50,
            "met": ask_p50 < ASK_TARGET_MS,
        },
        "results": [asdict(m) for m in measured],
    }
    path = benchlib.write_results("http_latency", payload)
    print(f"\nWrote {path.relative_to(benchlib.REPO)}.")
    return 1 if any(m.errors for m in measured) else 0


def report(measured: Sequence[Measurement], server_env: dict[str, str]) -> None:
    setting = ", ".join(f"{k}={v}" for k, v in server_env.items()) or "default environment"
    print(f"## HTTP latency, reference corpus ({QUESTIONS} gold questions; server: {setting})\n")
    headers = [
        "endpoint",
        "concurrency",
        "requests",
        "errors",
        "p50 ms",
        "p95 ms",
        "req/s",
        "p50 × /healthz",
        "server p50 ms",
    ]
    rows = [
        [
            "GET /healthz" if m.endpoint == "healthz" else f"POST /v1/{m.endpoint}",
            m.concurrency,
            m.requests,
            m.errors,
            m.p50_ms,
            m.p95_ms,
            m.requests_per_s,
            m.vs_healthz,
            m.server_p50_ms,
        ]
        for m in measured
    ]
    print(benchlib.markdown_table(headers, rows, digits=1))
    ask = next(m for m in measured if m.endpoint == "ask" and m.concurrency == 1)
    verdict = "met" if ask.p50_ms < ASK_TARGET_MS else "missed"
    print(
        f"\nTarget /v1/ask p50 < {ASK_TARGET_MS:.0f} ms at concurrency 1: {verdict} "
        f"({ask.p50_ms:.1f} ms). Client and server share the machine's cores."
    )


if __name__ == "__main__":
    raise SystemExit(main())
