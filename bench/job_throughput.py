"""Upload job throughput of the real service: files per minute from 202 to `succeeded`.

`chancery serve` runs in its own process over a fresh data root; this script is the client, on
the same machine. One request uploads the three sample documents (the 10-page PDF, the Markdown
brief, the HTML note) `--copies` times each under different names, so every file is parsed,
chunked and embedded; the clock runs from the 202 to the first poll (every 50 ms) that sees the
job succeeded. A warm-up job of one copy each runs first, so that the figures leave out the
first embedding's warm-up; each round uploads into a collection of its own. The server embeds on
one torch thread (one per request, as it serves; torch's setting is per process), which leaves
the other cores to queries: this is the rate a serving process ingests at, not `chancery
ingest`'s.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib
import httpx

from service import subprocess_server

SAMPLES = benchlib.REPO / "samples"
FILES = (
    "northland-national-security-strategy.pdf",
    "northland-energy-brief.md",
    "astoria-relations-note.html",
)
STARTUP_SECONDS = 180
REQUEST_SECONDS = 300
JOB_SECONDS = 1800
POLL_SECONDS = 0.05


def batch(copies: int) -> list[tuple[str, bytes]]:
    files = []
    for copy in range(copies):
        for name in FILES:
            path = SAMPLES / name
            files.append((f"{path.stem}-{copy:02}{path.suffix}", path.read_bytes()))
    return files


def run_job(http: httpx.Client, collection: str, files: list[tuple[str, bytes]]) -> dict[str, Any]:
    """Upload the files as one job; its record, with the seconds from 202 to succeeded."""
    created = http.post("/v1/collections", json={"name": collection})
    created.raise_for_status()
    parts = [("files", (name, data)) for name, data in files]
    response = http.post(f"/v1/collections/{collection}/documents", files=parts)
    accepted = time.perf_counter()
    if response.status_code != 202:
        raise SystemExit(f"upload refused: {response.status_code} {response.text}")
    url = response.json()["url"]
    deadline = accepted + JOB_SECONDS
    while time.perf_counter() < deadline:
        job: dict[str, Any] = http.get(url).json()
        if job["state"] in ("succeeded", "failed"):
            seconds = time.perf_counter() - accepted
            break
        time.sleep(POLL_SECONDS)
    else:
        raise SystemExit(f"the job {url} did not finish in {JOB_SECONDS} s")
    failed = [f for f in job["files"] if f["status"] != "ok"]
    if job["state"] != "succeeded" or failed:
        raise SystemExit(f"the job did not ingest every file: {job}")
    job["seconds"] = seconds
    return job


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--copies", type=int, default=6, help="copies of each sample (6: 18 files)")
    parser.add_argument("--rounds", type=int, default=3, help="jobs measured (median reported)")
    args = parser.parse_args(argv)
    files = batch(args.copies)
    with tempfile.TemporaryDirectory(prefix="chancery-jobs-") as scratch:
        env = {"CHANCERY_DATA_DIR": str(Path(scratch) / "data")}
        with (
            subprocess_server.running_server(
                None,
                Path(scratch) / "server.log",
                ready="/healthz",
                startup_seconds=STARTUP_SECONDS,
                env=env,
                cwd=benchlib.REPO,
            ) as base_url,
            httpx.Client(base_url=base_url, timeout=REQUEST_SECONDS) as http,
        ):
            warm_up = run_job(http, "warm-up", batch(1))
            jobs = [run_job(http, f"round-{n}", files) for n in range(args.rounds)]
    rows = []
    for n, job in enumerate(jobs):
        pages = sum(f["pages"] for f in job["files"])
        chunks = sum(f["chunks"] for f in job["files"])
        rows.append(
            {
                "round": n,
                "files": len(job["files"]),
                "pages": pages,
                "chunks": chunks,
                "seconds": round(job["seconds"], 2),
                "files_per_minute": round(len(job["files"]) / job["seconds"] * 60, 1),
                "pages_per_minute": round(pages / job["seconds"] * 60, 1),
            }
        )
    summary = {
        "files_per_job": len(files),
        "warm_up_seconds": round(warm_up["seconds"], 2),
        "median_seconds": round(statistics.median(r["seconds"] for r in rows), 2),
        "median_files_per_minute": statistics.median(r["files_per_minute"] for r in rows),
        "median_pages_per_minute": statistics.median(r["pages_per_minute"] for r in rows),
    }
    print(
        benchlib.markdown_table(
            ["round", "files", "pages", "chunks", "s (202 → succeeded)", "files/min", "pages/min"],
            [list(row.values()) for row in rows],
        )
    )
    print(
        f"\nmedian: {summary['median_files_per_minute']} files/min, "
        f"{summary['median_pages_per_minute']} pages/min "
        f"({len(files)} files per job: the three samples x {args.copies})"
    )
    path = benchlib.write_results("job_throughput", {"summary": summary, "rounds": rows})
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
