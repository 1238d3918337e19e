"""`--collection NAME` and `chancery collections`: the command line on a data root."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from service import subprocess_server
from tests.conftest import REPO, SAMPLES

SAMPLE = SAMPLES / "northland-energy-brief.md"


def chancery(data_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command in its own process, on the data root `data_root`."""
    env = subprocess_server.child_environment({"CHANCERY_DATA_DIR": str(data_root)})
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env=env,
    )


def listed(data_root: Path) -> list[dict[str, object]]:
    result = chancery(data_root, "collections", "list", "--json")
    assert result.returncode == 0, result.stderr
    collections: list[dict[str, object]] = json.loads(result.stdout)["collections"]
    return collections


def test_a_collection_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = chancery(data, "collections", "create", "notes")
    assert created.returncode == 0, created.stderr
    assert listed(data) == [{"name": "notes", "index_version": None, "documents": 0}]
    again = chancery(data, "collections", "create", "notes")
    assert again.returncode == 1 and "already exists" in again.stderr

    ingested = chancery(data, "ingest", str(SAMPLE), "--collection", "notes")
    assert ingested.returncode == 0, ingested.stderr
    assert f"{data}/collections/notes/index: 1 added" in ingested.stdout
    [notes] = listed(data)
    assert notes["documents"] == 1 and str(notes["index_version"]).startswith("v-")

    search = chancery(data, "search", "gas storage", "--mode", "bm25", "--collection", "notes")
    assert search.returncode == 0, search.stderr
    assert SAMPLE.name in search.stdout
    removed = chancery(data, "remove", SAMPLE.name, "--collection", "notes")
    assert removed.returncode == 0, removed.stderr
    assert listed(data)[0]["documents"] == 0

    deleted = chancery(data, "collections", "delete", "notes")
    assert deleted.returncode == 0, deleted.stderr
    assert listed(data) == []
    assert not (data / "collections" / "notes").exists()


def test_without_index_or_collection_commands_use_the_collection_default(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = chancery(data, "search", "gas", "--mode", "bm25")
    assert result.returncode == 1
    assert f"{data}/collections/default/index holds no index" in result.stderr
    assert [c["name"] for c in listed(data)] == ["default"]
    protected = chancery(data, "collections", "delete", "default")
    assert protected.returncode == 1 and "cannot be deleted" in protected.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--index", "somewhere", "--collection", "notes"], 2, "not both"),
        (["--collection", "missing"], 1, "`chancery collections create missing`"),
        (["--collection", "../escape"], 2, "is not a collection name"),
        (["--collection", "Notes"], 2, "(try 'notes')"),
    ],
)
def test_collection_options_that_cannot_be_used(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    data = tmp_path / "data"
    result = chancery(data, "search", "gas", "--mode", "bm25", *args)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert not (tmp_path / "escape").exists()
