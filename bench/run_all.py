"""Run every benchmark in sequence, each in its own process, and print their tables.

One process per benchmark, one after another: on a two-core machine, benchmarks run side by side
would measure each other. Each one writes its own bench/results/NAME.json. A failing benchmark
does not stop the rest; the exit status says whether all passed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
BENCHMARKS = (
    "parse_speed",
    "ingest_throughput",
    "retrieval_quality",
    "financebench_retrieval",
    "calibrate_fusion",
    "search_latency",
    "scale",
    "sharding",
    "ray_ingest",
    "http_latency",
    "page_render",
    "job_throughput",
    "calibrate_abstention",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("names", nargs="*", help=f"some of {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument(
        "--sizes", help="passed to search_latency (default there: 10000,100000,1000000)"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    failed = []
    for name in args.names or BENCHMARKS:
        command = [sys.executable, str(BENCH / f"{name}.py")]
        if name == "search_latency" and args.sizes:
            command += ["--sizes", args.sizes]
        print(f"\n<!-- {name} -->", flush=True)
        started = time.perf_counter()
        code = subprocess.run(command, cwd=BENCH.parent, check=False).returncode
        print(f"\n<!-- {name}: {time.perf_counter() - started:.0f} s, exit {code} -->", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
