"""`chancery serve` in a child process on a free loopback port, for tests and benchmarks.

The child gets the parent's environment without its CHANCERY_* settings (so whoever runs a test
cannot change what the server does), plus offline flags and any extras the caller names. The
embedding precision is the one exception: `make test` runs the suite once in fp32 and, where the
CPU allows, once in bf16, and the servers the tests start must run in the same arithmetic.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

_STOP_SECONDS = 15
_INHERITED = frozenset({"CHANCERY_EMBED_BF16"})


class ServerStartError(RuntimeError):
    """The server exited, or was not ready in time; the message holds its log."""


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANCERY_") or k in _INHERITED}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    # Tests and benchmarks send far more than a person would; the rate limit has tests of its
    # own, which pass their settings as extras.
    env.update(CHANCERY_RATE_LIMIT_RPS="100000", CHANCERY_RATE_LIMIT_BURST="100000")
    env.update(extra or {})
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def running_server(
    index: Path | None,
    log: Path,
    *,
    ready: str = "/readyz",
    startup_seconds: float = 180,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[str]:
    """Yield the server's base URL once `ready` answers 200; stop the server afterwards.

    The server serves the index folder `index`, or, when it is None, the data root that `env`
    names (CHANCERY_DATA_DIR).
    """
    with server_process(
        index, log, ready=ready, startup_seconds=startup_seconds, env=env, cwd=cwd
    ) as (base_url, _):
        yield base_url


@contextlib.contextmanager
def server_process(
    index: Path | None,
    log: Path,
    *,
    ready: str = "/readyz",
    startup_seconds: float = 180,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`running_server`, yielding the process too, for a test that kills it."""
    port = free_port()
    command = [sys.executable, "-m", "service.cli", "serve"]
    if index is not None:
        command += ["--index", str(index)]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=child_environment(env),
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(process, base_url + ready, log, startup_seconds)
        yield base_url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(
    process: subprocess.Popen[bytes], url: str, log: Path, startup_seconds: float
) -> None:
    deadline = time.monotonic() + startup_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            code = process.returncode
            raise ServerStartError(f"the server exited with {code}:\n{log.read_text()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=5).status_code == 200:
                return
        time.sleep(0.2)
    tail = log.read_text()[-5000:]
    raise ServerStartError(f"{url} was not 200 within {startup_seconds} s:\n{tail}")
