"""Three `chancery serve` processes over one data root, no balancer in front: an ingest from the
command line and an upload through one replica both land, every replica switches to each new
version by itself, and no request of the traffic sent to all three meanwhile fails."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from index.store import current_version
from service import subprocess_server
from tests.conftest import REPO

SAMPLES = REPO / "samples"
FIRST = SAMPLES / "northland-national-security-strategy.pdf"
SECOND = SAMPLES / "northland-energy-brief.md"
THIRD = SAMPLES / "astoria-relations-note.html"
REPLICAS = 3
PATIENCE = 180.0
"""Seconds a replica may take to reach a version; only a failing test waits that long."""


@dataclass
class Traffic:
    """Searches sent to one replica in a loop, with what each answered."""

    url: str
    answers: list[tuple[int, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, stop: threading.Event) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not stop.is_set():
                try:
                    response = client.post(
                        "/v1/search", json={"question": "energy security and gas", "k": 3}
                    )
                    answer = (response.status_code, response.json().get("index_version"))
                except httpx.HTTPError as exc:
                    answer = (0, repr(exc))
                with self.lock:
                    self.answers.append(answer)

    def versions(self) -> list[str | None]:
        with self.lock:
            return [version for _, version in self.answers]


def ingest(data: Path, *files: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "ingest", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env=subprocess_server.child_environment({"CHANCERY_DATA_DIR": str(data)}),
    )
    assert done.returncode == 0, done.stderr


def until(probe: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {PATIENCE:g} s")
        time.sleep(0.1)


def test_replicas_over_one_data_root_each_switch_and_no_request_fails(tmp_path: Path) -> None:
    data = tmp_path / "data"
    index = data / "collections" / "default" / "index"
    ingest(data, FIRST)
    env = {"CHANCERY_DATA_DIR": str(data)}
    stop = threading.Event()
    with ExitStack() as stack:
        urls = [
            stack.enter_context(
                subprocess_server.running_server(
                    None, tmp_path / f"replica-{n}.log", cwd=REPO, env=env
                )
            )
            for n in range(REPLICAS)
        ]
        traffic = [Traffic(url) for url in urls]
        senders = [threading.Thread(target=t.run, args=(stop,), daemon=True) for t in traffic]
        for sender in senders:
            sender.start()
        stack.callback(lambda: [sender.join(60) for sender in senders])
        stack.callback(stop.set)

        def everyone_on(version: str) -> Callable[[], bool]:
            return lambda: all(t.versions()[-1:] == [version] for t in traffic)

        first = current_version(index)
        assert first is not None
        until(everyone_on(first.name), "every replica answering")

        ingest(data, SECOND)  # a writer outside the replicas: `chancery ingest`
        second = current_version(index)
        assert second is not None and second != first
        until(everyone_on(second.name), f"every replica switching to {second.name}")

        # A writer inside one replica: an upload job, followed through another replica.
        parts = [("files", (THIRD.name, THIRD.read_bytes(), "text/html"))]
        job_url = httpx.post(
            f"{urls[2]}/v1/collections/default/documents", files=parts, timeout=60
        ).json()["url"]
        job: dict[str, object] = {}

        def job_done() -> bool:
            job.update(httpx.get(f"{urls[0]}{job_url}", timeout=60).json())
            return job["state"] in ("succeeded", "failed")

        until(job_done, "the upload job ending")
        assert job["state"] == "succeeded", job
        third = current_version(index)
        assert third is not None and job["index_version"] == third.name
        until(everyone_on(third.name), f"every replica switching to {third.name}")

        for url in urls:
            found = httpx.post(
                f"{url}/v1/search", json={"question": "Astoria relations", "k": 3}, timeout=60
            ).json()
            assert found["index_version"] == third.name
            assert THIRD.name in {hit["doc"] for hit in found["hits"]}

    failed = [answer for t in traffic for answer in t.answers if answer[0] != 200]
    assert failed == []
    for t in traffic:
        seen = [version for version in t.versions() if version is not None]
        # Each replica moved forward only, and through the versions in order.
        assert seen == sorted(seen)
        assert {first.name, second.name, third.name} >= set(seen)
        assert seen[-1] == third.name
