"""Real servers for tests: `chancery serve` in a child process over a data root of its own,
holding the files given (the real model behind a real server), and an app under uvicorn in a
thread (`Served`)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from service import subprocess_server
from tests.conftest import REPO


@contextmanager
def served_data_root(
    files: Sequence[Path],
    root: Path,
    *,
    collection: str = "default",
    startup_seconds: float = 180,
    prepare: Callable[[Path], object] | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """The base URL of a server over a new data root in `root`, with `files` ingested into
    `collection`; a test fails (not errors) when the server cannot start. `prepare`, when
    given, is called with the data root once the files are ingested and before the server
    starts (to create API keys, say); `env` adds settings for the server."""
    data = {"CHANCERY_DATA_DIR": str(root / "data")}
    command = [sys.executable, "-m", "service.cli", "ingest", *map(str, files)]
    ingest = subprocess.run(
        [*command, "--collection", collection],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env=subprocess_server.child_environment(data),
    )
    assert ingest.returncode == 0, ingest.stderr
    if prepare is not None:
        prepare(root / "data")
    try:
        with subprocess_server.running_server(
            None,
            root / "server.log",
            startup_seconds=startup_seconds,
            cwd=REPO,
            env={**data, **(env or {})},
        ) as url:
            yield url
    except subprocess_server.ServerStartError as exc:
        pytest.fail(str(exc))


class Served:
    """The app under uvicorn on a free loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        for _ in range(600):
            if self._server.started:
                break
            threading.Event().wait(0.05)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=20)
