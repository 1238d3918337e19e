"""`chancery serve` in a child process over a data root of its own, holding the files given:
for the tests that need the real model behind a real server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

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
