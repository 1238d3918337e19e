"""Making writes survive a power cut: fsync for files, folders and whole trees.

A rename is durable only once the folder holding it is synced, and a file's bytes only once the
file is; every writer of the index, the job records and the uploaded originals needs both.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_tree(directory: Path) -> None:
    """Every file below `directory`, then every folder, deepest names last, then itself."""
    for path in directory.rglob("*"):
        if path.is_file():
            fsync_file(path)
    for path in [*sorted(p for p in directory.rglob("*") if p.is_dir()), directory]:
        fsync_dir(path)
