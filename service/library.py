"""What a server answers for: its collections, their engines, and the jobs that change them.

The routes see a `Library` and never which kind it is. `chancery serve` serves a data root
(`service.data_root.DataRoot`: collections created and deleted over HTTP, uploads run as jobs);
`chancery serve --index DIR` serves one bare index folder as the collection `default`
(`BareIndex`, here), read-only over HTTP: a bare folder has no place for uploaded originals or
job records, and writing them beside it would leave files nobody asked for. `chancery ingest
--index DIR` stays its writer, and the engine picks up each version it writes.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from index.store import Manifest, StoreError, current_version, read_manifest
from service.collections import DEFAULT_COLLECTION, CollectionNotFoundError, parse_name
from service.engine import Engine
from service.errors import ConflictError
from service.jobs import Job, JobNotFoundError
from service.multipart import FilePart
from service.uploads import Originals

_MANIFEST_TRIES = 3


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    index_version: str | None
    """The version in service (`v-...`); None before the first ingest."""
    documents: int


class Library(Protocol):
    """The collections a server answers for, and the jobs that change them."""

    def start(self) -> None:
        """Make ready to serve: called once, before the first request."""

    def stop(self) -> None:
        """Refuse new jobs and let the running ones end: called once, at shutdown."""

    def engine(self, name: str) -> Engine:
        """The engine that answers for the collection."""

    def originals(self, name: str) -> Originals | None:
        """The original files the collection keeps; None where none are kept."""

    def collections(self) -> list[CollectionInfo]: ...

    def create(self, name: str) -> CollectionInfo: ...

    def delete(self, name: str) -> None: ...

    async def upload(self, name: str, files: AsyncIterable[FilePart]) -> Job:
        """Stage the files (refusing the request at the first limit passed) and queue their
        ingest; the collection is checked before any file is read."""

    def remove(self, name: str, doc_id: str) -> Job:
        """Queue the removal of a document the collection holds."""

    def job(self, job_id: str) -> Job: ...


def current_manifest(index_dir: Path) -> tuple[str, Manifest] | None:
    """The version in service and its manifest, or None when there is no version yet."""
    for attempt in range(_MANIFEST_TRIES):
        version = current_version(index_dir)
        if version is None:
            return None
        try:
            return version.name, read_manifest(version)
        except StoreError:
            # A writer may have switched `current` twice since it was read, removing the version
            # it named; only an unreadable manifest that is still current is an error.
            if attempt + 1 == _MANIFEST_TRIES or current_version(index_dir) == version:
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def collection_info(name: str, index_dir: Path) -> CollectionInfo:
    found = current_manifest(index_dir)
    if found is None:
        return CollectionInfo(name, None, 0)
    version, manifest = found
    return CollectionInfo(name, version, len(manifest.documents))


class ReadOnlyError(ConflictError):
    """The server serves a bare index folder, which only the command line writes."""


class BareIndex:
    """One index folder served as the collection `default`, read-only over HTTP."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def engine(self, name: str) -> Engine:
        self._check(name)
        return self._engine

    def originals(self, name: str) -> Originals | None:
        # `chancery ingest --index` keeps no originals: a bare folder has no place for them.
        self._check(name)
        return None

    def collections(self) -> list[CollectionInfo]:
        return [collection_info(DEFAULT_COLLECTION, self._engine.root)]

    def create(self, name: str) -> CollectionInfo:
        parse_name(name)
        raise self._read_only("collections cannot be created")

    def delete(self, name: str) -> None:
        self._check(name)
        raise self._read_only("its one collection cannot be deleted")

    async def upload(self, name: str, files: AsyncIterable[FilePart]) -> Job:
        self._check(name)
        raise self._read_only("uploads are not taken")

    def remove(self, name: str, doc_id: str) -> Job:
        self._check(name)
        raise self._read_only("documents are not removed over HTTP")

    def job(self, job_id: str) -> Job:
        raise JobNotFoundError("no such job: this server serves one index folder and runs no jobs")

    def _check(self, name: str) -> None:
        if parse_name(name) != DEFAULT_COLLECTION:
            raise CollectionNotFoundError(
                f"no collection '{name}'; this server serves one index folder as "
                f"'{DEFAULT_COLLECTION}'"
            )

    def _read_only(self, what: str) -> ReadOnlyError:
        return ReadOnlyError(
            f"this server serves one index folder (chancery serve --index), so {what}; change it "
            "with `chancery ingest --index`, or serve a data root (`chancery serve`, "
            "CHANCERY_DATA_DIR) to manage collections and upload over HTTP"
        )
