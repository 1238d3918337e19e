"""HTTP latency of the real service: /v1/search and /v1/ask at concurrency 1 and 16, and during an
index swap.

`chancery serve` runs in its own process on an index of the reference corpus; this script is
the client, on the same machine. Each endpoint gets 100 requests one at a time, then 200 from 16
threads at once, cycling through a fixed list of gold questions. The in-run baseline is
GET /healthz under the same load: on a small shared machine, absolute times drift between runs,
and the ratio to /healthz says what the question answering itself costs. The target reported
against: /v1/ask p50 under 50 ms at concurrency 1.

Throughput at concurrency 16 is measured a second way, with `wrk` (Debian's package) as the
load generator: a C program on epoll that costs the server little CPU, where Python client
threads on two cores would take much of it. Each endpoint gets WRK_SECONDS of 16 connections on
one wrk thread, cycling through the same questions, `--wrk-rounds` times (the median round
is the figure: this shared machine drifts by 15% from one run to the next). Beside each round,
the server's CPU time per request (from /proc) and how busy the whole machine was: a round in
which other work took the cores shows it there. Target: /v1/search at least 100 requests/s with
p95 at most 300 ms on the reference corpus.

The swap scenario (alone: `--swap-only`) runs a server of its own on a bigger index (the corpus
documents repeated `--swap-copies` times, so that a version takes a while to load) and keeps 16
threads asking /v1/ask while `current` moves to a new version 30 times, as a finished ingest
moves it. A swap's window runs from the switch to the first answer from the new version: the
requests sent in it are the ones a load on the request path would hold up. The steady sample is
the requests sent in a quiet stretch before each switch, interleaved with the swaps so that the
machine's drift over the run touches both alike. Target: the window p99 within 2x the steady p99.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import benchlib
import httpx

from index.store import (
    CURRENT,
    DocumentEntry,
    Index,
    current_version,
    read_manifest,
    write_version,
    writer_lock,
)
from service import subprocess_server

QUESTIONS = 20
LOADS = ((1, 100), (16, 200))
"""(concurrency, requests) for each endpoint."""
ENDPOINTS = ("healthz", "search", "ask")
ASK_TARGET_MS = 50.0
STARTUP_SECONDS = 180
REQUEST_SECONDS = 300
SWAP_CONCURRENCY = 16
SWAPS = 30
SETTLE_REQUESTS = 2 * SWAP_CONCURRENCY
"""Answers after a swap's window before its effects (the old version's last requests, its
release) count as steady."""
QUIET_REQUESTS = 2 * SWAP_CONCURRENCY
"""Answers in the quiet stretch before each switch; the requests sent in it are the steady
sample (about 30 per swap, some 900 in all)."""
SWAP_TARGET_RATIO = 2.0
SWAP_COPIES = 300
"""About 43,000 chunks (an IVF index, some 600 MB on disk): a version loads in 35-90 ms alone,
several times that under load, long enough for the requests that wait on it to show."""


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


WRK_SECONDS = 20
WRK_CONCURRENCY = 16
WRK_ROUNDS = 3
SEARCH_TARGET_RPS = 100.0
SEARCH_TARGET_P95_MS = 300.0
_WRK_SCRIPT = """
local bodies = {%s}
local path = "%s"
local counter = 0
request = function()
  counter = counter + 1
  if path == "/healthz" then return wrk.format("GET", path) end
  return wrk.format("POST", path, {["Content-Type"] = "application/json"},
                    bodies[(counter %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %%d %%d %%d %%.1f %%.1f %%.1f\\n", summary.requests,
    e.connect + e.read + e.write + e.status + e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class WrkMeasurement:
    endpoint: str
    concurrency: int
    seconds: float
    requests: int
    errors: int
    """Connection errors, timeouts and non-2xx answers."""
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    server_cpu_ms: float | None = None
    """The server process's CPU time per request (user and system, all its threads)."""
    machine_busy: float | None = None
    """The share of all the machine's cores busy during the run, the server's and others'."""


def _label(endpoint: str) -> str:
    return "GET /healthz" if endpoint == "healthz" else f"POST /v1/{endpoint}"


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _process_cpu_s(pid: int) -> float:
    # Fields 14 and 15 of /proc/PID/stat, after the parenthesised command name.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_cpu_s() -> tuple[float, float]:
    """(busy, all) CPU seconds of every core since boot, from /proc/stat."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    rate = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / rate, sum(ticks) / rate


def measure_wrk(
    base_url: str, endpoint: str, questions: Sequence[str], server_pid: int | None = None
) -> WrkMeasurement | None:
    """Throughput and latency from wrk, and the CPU it cost the server (`server_pid`) and the
    machine; None where wrk is not installed."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    path = _label(endpoint).split()[1]
    bodies = ", ".join(_lua_string(json.dumps({"question": q})) for q in questions)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT % (bodies, path))
    cpu_before = _process_cpu_s(server_pid) if server_pid is not None else None
    busy_before, all_before = _machine_cpu_s()
    try:
        result = subprocess.run(
            [
                wrk,
                "-t1",
                f"-c{WRK_CONCURRENCY}",
                f"-d{WRK_SECONDS}s",
                f"--timeout={REQUEST_SECONDS}s",
                "-s",
                script.name,
                base_url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        Path(script.name).unlink()
    busy_after, all_after = _machine_cpu_s()
    server_cpu_s = (
        _process_cpu_s(server_pid) - cpu_before
        if server_pid is not None and cpu_before is not None
        else None
    )
    line = next(row for row in result.stdout.splitlines() if row.startswith("WRK "))
    requests, errors, duration_us, p50, p95, p99 = line.split()[1:]
    seconds = int(duration_us) / 1e6
    return WrkMeasurement(
        endpoint,
        WRK_CONCURRENCY,
        seconds,
        int(requests),
        int(errors),
        int(requests) / seconds,
        float(p50) / 1000,
        float(p95) / 1000,
        float(p99) / 1000,
        None if server_cpu_s is None or not int(requests) else server_cpu_s * 1000 / int(requests),
        (busy_after - busy_before) / max(all_after - all_before, 1e-9),
    )


def report_wrk(measured: Sequence[WrkMeasurement]) -> None:
    print(
        f"\n## Throughput at concurrency {WRK_CONCURRENCY} with wrk ({WRK_SECONDS} s each, "
        "one wrk thread)\n"
    )
    headers = [
        "endpoint",
        "requests",
        "errors",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "server CPU ms/request",
        "machine busy",
    ]
    rows: list[list[benchlib.Cell]] = [
        [
            _label(m.endpoint),
            m.requests,
            m.errors,
            m.requests_per_s,
            m.p50_ms,
            m.p95_ms,
            m.p99_ms,
            m.server_cpu_ms,
            None if m.machine_busy is None else f"{m.machine_busy:.0%}",
        ]
        for m in measured
    ]
    print(benchlib.markdown_table(headers, rows, digits=1))
    search = median_round([m for m in measured if m.endpoint == "search"])
    met = search.requests_per_s >= SEARCH_TARGET_RPS and search.p95_ms <= SEARCH_TARGET_P95_MS
    print(
        f"\nTarget /v1/search ≥ {SEARCH_TARGET_RPS:.0f} requests/s with p95 ≤ "
        f"{SEARCH_TARGET_P95_MS:.0f} ms: {'met' if met else 'missed'} "
        f"(median round: {search.requests_per_s:.0f} requests/s, p95 {search.p95_ms:.0f} ms)."
    )


def median_round(rounds: Sequence[WrkMeasurement]) -> WrkMeasurement:
    """The round with the median throughput (the lower middle one of an even count)."""
    ordered = sorted(rounds, key=lambda m: m.requests_per_s)
    return ordered[(len(ordered) - 1) // 2]


@dataclass(frozen=True)
class SwapMeasurement:
    concurrency: int
    swaps: int
    steady_requests: int
    """Requests sent in the quiet stretch before each switch, all swaps."""
    steady_p50_ms: float
    steady_p99_ms: float
    steady_max_ms: float
    window_requests: int
    """Requests sent between a switch and the first answer from the new version, all swaps."""
    window_p50_ms: float
    window_p99_ms: float
    window_max_ms: float
    window_median_ms: float
    """Median length of a window: the server's load of a version plus one request."""
    window_old_answers: int
    """Requests sent in a window and answered from the version before the switch: those that
    did not wait for the load."""
    errors: int
    stale_after_window: int
    """Answers from the old version to requests sent after the new one had answered."""

    @property
    def p99_ratio(self) -> float | None:
        return benchlib.ratio(self.window_p99_ms, self.steady_p99_ms)


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
def running_server(index: Path, log: Path, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """`chancery serve` on `index`, as its base URL and process id; a server that dies or never
    gets ready ends the benchmark."""
    try:
        with subprocess_server.server_process(
            index, log, startup_seconds=STARTUP_SECONDS, env=env, cwd=benchlib.REPO
        ) as (base_url, process):
            yield base_url, process.pid
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


# -- the swap scenario --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sent:
    issued: float
    done: float
    status: int
    version: str | None


class _Traffic:
    """/v1/ask from `concurrency` threads, each sending its next request when one returns."""

    def __init__(self, base_url: str, questions: Sequence[str], concurrency: int) -> None:
        self._base_url = base_url
        self._questions = questions
        self._concurrency = concurrency
        self._stop = threading.Event()
        self._answered = threading.Condition()
        self._threads: list[threading.Thread] = []
        self.sent: list[_Sent] = []

    def __enter__(self) -> _Traffic:
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True)
            for n in range(self._concurrency)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(REQUEST_SECONDS)

    def wait_for_count(self, count: int, what: str) -> None:
        self._wait(lambda: len(self.sent) >= count, what)

    def first_answer_from(self, version: str, since: float, mark: int) -> _Sent:
        """The first answer from `version` to a request sent at `since` or later, once one came;
        `mark` is how many answers were recorded before `since` (none of them can be it)."""

        def answers() -> list[_Sent]:
            return [s for s in self.sent[mark:] if s.version == version and s.issued >= since]

        self._wait(lambda: bool(answers()), f"an answer from {version}")
        return min(answers(), key=lambda s: s.done)

    def _wait(self, done: Callable[[], bool], what: str) -> None:
        with self._answered:
            if not self._answered.wait_for(done, REQUEST_SECONDS):
                raise SystemExit(f"the swap benchmark gave up waiting for {what}")

    def _run(self, number: int) -> None:
        with httpx.Client(base_url=self._base_url, timeout=REQUEST_SECONDS) as http:
            while not self._stop.is_set():
                question = self._questions[number % len(self._questions)]
                number += self._concurrency
                issued = time.perf_counter()
                status, version = 0, None
                with contextlib.suppress(httpx.HTTPError):
                    response = http.post("/v1/ask", json={"question": question})
                    status = response.status_code
                    if status == 200:
                        version = str(response.json()["index_version"])
                sent = _Sent(issued, time.perf_counter(), status, version)
                with self._answered:
                    self.sent.append(sent)
                    self._answered.notify_all()


def prepare_swap(index: Path, served: Path, copies: int) -> Path:
    """The index to serve, whose `current` the swaps move: a copy of `index`, or with `copies` > 1
    each of its documents that many times under new names (a bigger index, whose versions take
    longer to load, written from the stored vectors, so without embedding). Returns its version.
    """
    source = current_version(index)
    if source is None:
        raise SystemExit(f"{index} holds no index")
    if copies == 1:
        shutil.copytree(
            index,
            served,
            symlinks=True,
            ignore=shutil.ignore_patterns(".lock"),
            copy_function=_link_or_copy,
        )
    else:
        manifest = read_manifest(source)
        original = Index(source, manifest)
        try:
            entries = list(original.entries())
        finally:
            original.close()
        with writer_lock(served):
            write_version(
                served,
                [_renamed(entry, copy) for copy in range(copies) for entry in entries],
                manifest.embedder,
                manifest.chunking,
            )
    version = current_version(served)
    assert version is not None
    return version


def _renamed(entry: DocumentEntry, copy: int) -> DocumentEntry:
    if copy == 0:
        return entry
    document = replace(
        entry.document,
        doc_id=f"{entry.document.doc_id}-copy{copy}",
        file_name=f"copy{copy}-{entry.document.file_name}",
    )
    chunks = tuple(
        replace(chunk, doc_id=document.doc_id, chunk_id=f"{chunk.chunk_id}-copy{copy}")
        for chunk in entry.chunks
    )
    return replace(entry, document=document, chunks=chunks)


def _link_or_copy(source: str, target: str) -> None:
    # A version's files are never written once it is in place, so a hard link serves as a copy
    # at no cost: no disk writes competing with the requests, and the files are already in the
    # page cache, as an ingest's freshly written files are.
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)


def add_version(root: Path, source: Path, number: int) -> Path:
    """A new version as an ingest could have written it: `source` under a new name. Older ones
    go as an ingest removes them, keeping the one a request may still read (and `source`)."""
    version = root / f"{source.name}-swap{number:03d}"
    shutil.copytree(source, version, copy_function=_link_or_copy)
    for old in sorted(root.glob("v-*"))[:-2]:
        if old != source:
            shutil.rmtree(old)
    return version


def switch_current(root: Path, version: Path) -> None:
    """What a finished ingest does: a new link renamed over `current`, in one step."""
    link = root / ".tmp-link-bench"
    link.unlink(missing_ok=True)
    link.symlink_to(version.name)
    link.replace(root / CURRENT)


def measure_swap(
    base_url: str, served: Path, source: Path, questions: Sequence[str]
) -> SwapMeasurement:
    """Each swap: answers to let the last one settle, a quiet stretch (the steady sample, so
    that the machine's drift over the run touches both samples alike), then the switch."""
    order = {source.name: 0}
    quiet: list[tuple[float, float]] = []
    windows: list[tuple[float, float]] = []
    with _Traffic(base_url, questions, SWAP_CONCURRENCY) as traffic:
        for swap in range(1, SWAPS + 1):
            target = add_version(served, source, swap)
            order[target.name] = swap
            traffic.wait_for_count(len(traffic.sent) + SETTLE_REQUESTS, "answers between swaps")
            quiet_from = time.perf_counter()
            traffic.wait_for_count(len(traffic.sent) + QUIET_REQUESTS, "steady answers")
            mark = len(traffic.sent)
            switched = time.perf_counter()
            switch_current(served, target)
            first = traffic.first_answer_from(target.name, switched, mark)
            quiet.append((quiet_from, switched))
            windows.append((switched, first.done))
    sent = traffic.sent
    steady_ms = _latencies_ms(sent, quiet)
    window_ms = _latencies_ms(sent, windows)
    return SwapMeasurement(
        concurrency=SWAP_CONCURRENCY,
        swaps=SWAPS,
        steady_requests=len(steady_ms),
        steady_p50_ms=benchlib.percentile(steady_ms, 50),
        steady_p99_ms=benchlib.percentile(steady_ms, 99),
        steady_max_ms=max(steady_ms),
        window_requests=len(window_ms),
        window_p50_ms=benchlib.percentile(window_ms, 50),
        window_p99_ms=benchlib.percentile(window_ms, 99),
        window_max_ms=max(window_ms),
        window_median_ms=benchlib.median([(end - start) * 1000 for start, end in windows]),
        window_old_answers=sum(
            1
            for swap, (start, end) in enumerate(windows, start=1)
            for s in sent
            if start <= s.issued < end and s.version is not None and order[s.version] < swap
        ),
        errors=sum(s.status != 200 for s in sent),
        stale_after_window=_stale(sent, windows, order),
    )


def _latencies_ms(sent: Sequence[_Sent], spans: Sequence[tuple[float, float]]) -> list[float]:
    """Latencies of the requests sent within any of `spans` (start included, end not)."""
    return [
        (s.done - s.issued) * 1000
        for s in sent
        if any(start <= s.issued < end for start, end in spans)
    ]


def _stale(
    sent: Sequence[_Sent], windows: Sequence[tuple[float, float]], order: dict[str, int]
) -> int:
    """Answers from a version older than one that had already answered before the request was
    sent: zero, or the switch is not one step for every request."""
    stale = 0
    for s in sent:
        if s.version is None:
            continue
        newest = sum(1 for _, end in windows if end < s.issued)  # swaps that had completed
        stale += order[s.version] < newest
    return stale


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
    parser.add_argument(
        "--swap-only", action="store_true", help="only the index swap scenario at concurrency 16"
    )
    parser.add_argument("--no-swap", action="store_true", help="skip the index swap scenario")
    parser.add_argument(
        "--wrk-rounds",
        type=int,
        default=WRK_ROUNDS,
        metavar="N",
        help=f"wrk runs of each endpoint, taken in turn (default {WRK_ROUNDS}); the median counts",
    )
    parser.add_argument(
        "--swap-copies",
        type=int,
        default=SWAP_COPIES,
        metavar="N",
        help=f"serve each corpus document N times, for versions that take longer to load "
        f"(default {SWAP_COPIES}; 1 = the corpus as it is)",
    )
    args = parser.parse_args(argv)
    if args.wrk_rounds < 1:
        parser.error("--wrk-rounds must be 1 or more")
    if args.swap_copies < 1:
        parser.error("--swap-copies must be 1 or more")
    if args.swap_only and args.no_swap:
        parser.error("--swap-only and --no-swap exclude each other")
    server_env = dict(item.split("=", 1) for item in args.server_env)
    corpus = benchlib.require_corpus()
    benchlib.quiet_libraries()
    questions = [q.question for q in benchlib.answerable_gold()[:QUESTIONS]]

    measured: list[Measurement] = []
    by_wrk: list[WrkMeasurement] = []
    with tempfile.TemporaryDirectory(prefix="chancery-http-") as scratch:
        index = args.index
        if index is None:
            index = Path(scratch) / "index"
            build_index(corpus, index)
        if not args.swap_only:
            with running_server(index, Path(scratch) / "server.log", server_env) as (
                base_url,
                pid,
            ):
                warm_up(base_url, questions)
                measured = [
                    measure(base_url, endpoint, concurrency, count, questions)
                    for concurrency, count in LOADS
                    for endpoint in ENDPOINTS
                ]
                found = [
                    measure_wrk(base_url, endpoint, questions, pid)
                    for _ in range(args.wrk_rounds)
                    for endpoint in ENDPOINTS
                ]
                by_wrk = [m for m in found if m is not None]
        # A server of its own, on an index of its own: the swaps move `current`, and `--index`
        # may be an index someone still needs.
        swap: SwapMeasurement | None = None
        if not args.no_swap:
            served = Path(scratch) / "swapped"
            source = prepare_swap(index, served, args.swap_copies)
            with running_server(served, Path(scratch) / "swap-server.log", server_env) as (
                base_url,
                _,
            ):
                warm_up(base_url, questions)
                swap = measure_swap(base_url, served, source, questions)
    baseline = {m.concurrency: m.p50_ms for m in measured if m.endpoint == "healthz"}
    measured = [
        replace(m, vs_healthz=benchlib.ratio(m.p50_ms, baseline[m.concurrency])) for m in measured
    ]
    payload: dict[str, Any] = {"questions": questions, "server_env": server_env}
    if measured:
        report(measured, server_env)
        ask_p50 = next(m.p50_ms for m in measured if m.endpoint == "ask" and m.concurrency == 1)
        payload["target"] = {
            "ask_p50_ms_at_concurrency_1": ASK_TARGET_MS,
            "measured_ms": ask_p50,
            "met": ask_p50 < ASK_TARGET_MS,
        }
        payload["results"] = [asdict(m) for m in measured]
    if by_wrk:
        report_wrk(by_wrk)
        payload["wrk"] = [asdict(m) for m in by_wrk]
    elif measured:
        print("\nwrk is not installed (apt-get install wrk): no throughput table.")
    if swap is not None:
        report_swap(swap)
        payload["swap"] = {
            **asdict(swap),
            "p99_ratio": swap.p99_ratio,
            "target_ratio": SWAP_TARGET_RATIO,
            "met": swap.p99_ratio is not None and swap.p99_ratio <= SWAP_TARGET_RATIO,
        }
    name = "http_latency_swap" if args.swap_only else "http_latency"
    path = benchlib.write_results(name, payload)
    print(f"\nWrote {path.relative_to(benchlib.REPO)}.")
    errors = sum(m.errors for m in measured) + sum(m.errors for m in by_wrk)
    if swap is not None:
        errors += swap.errors + swap.stale_after_window
    return 1 if errors else 0


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
            _label(m.endpoint),
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


def report_swap(swap: SwapMeasurement) -> None:
    print(
        f"\n## /v1/ask during index swaps, concurrency {swap.concurrency} "
        f"({swap.swaps} swaps; a window runs from the switch to the first answer from the new "
        "version)\n"
    )
    headers = ["phase", "requests", "p50 ms", "p99 ms", "max ms"]
    rows: list[list[benchlib.Cell]] = [
        [
            "steady",
            swap.steady_requests,
            swap.steady_p50_ms,
            swap.steady_p99_ms,
            swap.steady_max_ms,
        ],
        [
            "sent during a swap",
            swap.window_requests,
            swap.window_p50_ms,
            swap.window_p99_ms,
            swap.window_max_ms,
        ],
    ]
    print(benchlib.markdown_table(headers, rows, digits=1))
    ratio = swap.p99_ratio
    verdict = "met" if ratio is not None and ratio <= SWAP_TARGET_RATIO else "missed"
    shown = "–" if ratio is None else f"{ratio:.2f}x"
    print(
        f"\nTarget swap p99 within {SWAP_TARGET_RATIO:.0f}x the steady p99: {verdict} ({shown}). "
        f"Median window {swap.window_median_ms:.1f} ms; {swap.window_old_answers} of the "
        f"{swap.window_requests} requests sent in a window answered from the old version; "
        f"{swap.errors} errors; {swap.stale_after_window} old-version answers after a window "
        "closed."
    )


if __name__ == "__main__":
    raise SystemExit(main())
