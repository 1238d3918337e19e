"""What API keys and the audit log cost: throughput and latency of the real server at concurrency
32, open against keys only, keys with the audit log, and keys with a metadata-only audit.

Four `chancery serve` processes run side by side over copies of one data root holding the
reference corpus (two copies have keys, the other two none; `CHANCERY_AUDIT` and
`CHANCERY_AUDIT_TEXT` set the rest). The rounds are interleaved, each round sending the same
requests to every server in a rotating order, so that the machine's drift over the run touches
all four alike; each figure is the median over the rounds, and each ratio is against the open
server (no keys, no audit) in the same run. The routes: GET /v1/documents (authentication
alone, nothing audited, little else to do), POST /v1/search and POST /v1/ask (audited).
The client is `eval.load` (one asyncio loop) on the same two cores as the servers.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import benchlib

from eval.load import Planned, plan, run_load
from service import subprocess_server
from service.keys import KeyStore, Scope

CONCURRENCY = 32
ROUNDS = 5
REQUESTS = 200
"""Per route, server and round."""
QUESTIONS = 20
STARTUP_SECONDS = 240
REQUEST_SECONDS = 300


@dataclass(frozen=True)
class Setup:
    name: str
    keys: bool
    environment: dict[str, str]


SETUPS = (
    Setup("open (no keys, no audit)", False, {"CHANCERY_AUDIT": "false"}),
    Setup("keys, no audit", True, {"CHANCERY_AUDIT": "false"}),
    Setup("keys + audit", True, {}),
    Setup("keys + audit, metadata only", True, {"CHANCERY_AUDIT_TEXT": "false"}),
)
ROUTES = (("GET", "/v1/documents"), ("POST", "/v1/search"), ("POST", "/v1/ask"))


@dataclass(frozen=True)
class Figure:
    setup: str
    route: str
    requests: int
    errors: int
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    throughput_ratio: float | None = None
    """Against the open server on the same route, in the same run."""


def prepare(corpus: Path, scratch: Path) -> tuple[Path, Path, str]:
    """A data root without keys and a copy with one read key; the key's token."""
    open_root = scratch / "open"
    files = [corpus / benchlib.REFERENCE_PDF, corpus / benchlib.REFERENCE_TXT]
    subprocess.run(
        [sys.executable, "-m", "service.cli", "ingest", *map(str, files)],
        check=True,
        capture_output=True,
        cwd=benchlib.REPO,
        env=subprocess_server.child_environment({"CHANCERY_DATA_DIR": str(open_root)}),
    )
    keyed_root = scratch / "keyed"
    shutil.copytree(open_root, keyed_root, symlinks=True)
    store = KeyStore(keyed_root)
    try:
        token = store.create("bench", ["default"], Scope.READ)[1]
    finally:
        store.close()
    return open_root, keyed_root, token


@contextlib.contextmanager
def servers(open_root: Path, keyed_root: Path, scratch: Path) -> Iterator[dict[str, str]]:
    """Every setup's server, running at once, by setup name; each keyed setup serves a copy of
    its own, so that no two servers share an audit log."""
    with contextlib.ExitStack() as stack:
        urls = {}
        for number, setup in enumerate(SETUPS):
            root = open_root
            if setup.keys:
                root = scratch / f"keyed-{number}"
                shutil.copytree(keyed_root, root, symlinks=True)
            urls[setup.name] = stack.enter_context(
                subprocess_server.running_server(
                    None,
                    scratch / f"server-{number}.log",
                    startup_seconds=STARTUP_SECONDS,
                    cwd=benchlib.REPO,
                    env={"CHANCERY_DATA_DIR": str(root), **setup.environment},
                )
            )
        yield urls


def requests(
    method: str, path: str, questions: Sequence[str], count: int, token: str | None, tag: str
) -> list[Planned]:
    headers = {"authorization": f"Bearer {token}"} if token else {}

    def make(number: int) -> tuple[str, str, Any]:
        body = {"question": questions[number % len(questions)], "k": 5}
        return method, path, body if method == "POST" else None

    return plan(count, make, headers=headers, prefix=tag)


def measure(
    urls: dict[str, str], token: str, questions: Sequence[str], rounds: int, count: int
) -> list[Figure]:
    samples: dict[tuple[str, str], list[tuple[float, list[float], int]]] = {}
    for round_ in range(rounds):
        # A rotating order: no setup always runs first (or last) in a round.
        order = SETUPS[round_ % len(SETUPS) :] + SETUPS[: round_ % len(SETUPS)]
        for method, path in ROUTES:
            for setup in order:
                sent = requests(
                    method,
                    path,
                    questions,
                    count,
                    token if setup.keys else None,
                    f"r{round_}",
                )
                result = run_load(urls[setup.name], sent, CONCURRENCY, timeout_s=REQUEST_SECONDS)
                errors = sum(1 for o in result.outcomes if not o.acknowledged)
                samples.setdefault((setup.name, f"{method} {path}"), []).append(
                    (result.requests_per_s, result.latencies_ms(), errors)
                )
    figures = []
    for (setup_name, route), runs in samples.items():
        latencies = sorted(ms for _, measured, _ in runs for ms in measured)
        figures.append(
            Figure(
                setup=setup_name,
                route=route,
                requests=count * len(runs),
                errors=sum(errors for *_, errors in runs),
                requests_per_s=benchlib.median([rate for rate, *_ in runs]),
                p50_ms=benchlib.percentile(latencies, 50),
                p95_ms=benchlib.percentile(latencies, 95),
            )
        )
    baseline = {f.route: f.requests_per_s for f in figures if f.setup == SETUPS[0].name}
    return [
        Figure(
            **{**asdict(f), "throughput_ratio": benchlib.ratio(f.requests_per_s, baseline[f.route])}
        )
        for f in figures
    ]


def report(figures: Sequence[Figure], rounds: int, count: int) -> None:
    print(
        f"## Throughput with API keys and the audit log, concurrency {CONCURRENCY} "
        f"(reference corpus; median of {rounds} interleaved rounds of {count} requests)\n"
    )
    headers = ["route", "server", "requests", "errors", "req/s", "× open", "p50 ms", "p95 ms"]
    rows = [
        [
            f.route,
            f.setup,
            f.requests,
            f.errors,
            f.requests_per_s,
            f.throughput_ratio,
            f.p50_ms,
            f.p95_ms,
        ]
        for f in sorted(
            figures,
            key=lambda f: (
                ROUTES.index(tuple(f.route.split(" ", 1))),
                [s.name for s in SETUPS].index(f.setup),
            ),
        )
    ]
    print(benchlib.markdown_table(headers, rows, digits=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"default {ROUNDS}")
    parser.add_argument(
        "--requests",
        type=int,
        default=REQUESTS,
        help=f"per route, server and round (default {REQUESTS})",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.requests < 1:
        parser.error("--rounds and --requests must be 1 or more")
    corpus = benchlib.require_corpus()
    benchlib.quiet_libraries()
    questions = [q.question for q in benchlib.answerable_gold()[:QUESTIONS]]
    with tempfile.TemporaryDirectory(prefix="chancery-auth-") as folder:
        scratch = Path(folder)
        open_root, keyed_root, token = prepare(corpus, scratch)
        with servers(open_root, keyed_root, scratch) as urls:
            # One short round first, not counted: first requests load lazily built parts.
            measure(urls, token, questions, 1, CONCURRENCY)
            figures = measure(urls, token, questions, args.rounds, args.requests)
    report(figures, args.rounds, args.requests)
    path = benchlib.write_results(
        "auth_audit",
        {
            "concurrency": CONCURRENCY,
            "rounds": args.rounds,
            "requests_per_round": args.requests,
            "results": [asdict(f) for f in figures],
        },
    )
    print(f"\nWrote {path.relative_to(benchlib.REPO)}.")
    return 1 if any(f.errors for f in figures) else 0


if __name__ == "__main__":
    raise SystemExit(main())
