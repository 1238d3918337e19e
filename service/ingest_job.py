"""The work of a job: staged uploads into the collection's index, documents out of it.

Each staged file is first moved into the collection's originals, durably, so that no index
version can name a document whose original is missing; then the files are parsed and the index
updated under its writer lock, exactly as `chancery ingest` does. Afterwards the originals that
no version of the index names any more (a replaced or removed document's) are removed. The
staging folder goes whatever happens: a job runs once, and a client whose job failed uploads
again.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from index.store import StoreError, WriterBusyError
from index.update import UpdateResult
from ingest.models import Chunk, Document
from service.collections import Collection, CollectionError, CollectionRegistry
from service.ingester import Ingester
from service.jobs import FileResult, JobFailedError, JobOutcome, JobSpec
from service.uploads import Originals, referenced_originals

log = logging.getLogger("chancery")

WRITER_WAIT_SECONDS = 600.0
"""How long a job waits for another writer (a replica's job, `chancery ingest`) to finish."""
_FIRST_PAUSE = 0.05
_LAST_PAUSE = 2.0


class IngestJob:
    """`JobRunner`'s work for the collections of `registry`, ingesting with `ingester`."""

    def __init__(
        self,
        registry: CollectionRegistry[Any],
        ingester: Ingester,
        *,
        writer_wait: float = WRITER_WAIT_SECONDS,
    ) -> None:
        self._registry = registry
        self._ingester = ingester
        self._writer_wait = writer_wait

    def __call__(self, spec: JobSpec) -> JobOutcome:
        try:
            collection = self._registry.get(spec.collection)
        except CollectionError as exc:
            raise JobFailedError(str(exc)) from exc
        staging = _staging(collection, spec)
        originals = Originals(collection.originals_dir)
        try:
            try:
                with originals.in_use():
                    kept = [
                        originals.keep(staging / file.name, file.sha256)
                        for file in spec.files
                        if staging is not None
                    ]
                    parsed = self._ingester.parse(kept)
                    updated = self._update(collection, parsed.documents, spec.remove)
            except StoreError as exc:
                # The index refused the change (a document id taken by another file name, a
                # writer that held it too long): the message says what to do.
                raise JobFailedError(str(exc)) from exc
            finally:
                _collect_garbage(collection, originals)
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
        return JobOutcome(
            results=tuple(FileResult.from_report(report) for report in parsed.report.files),
            version=updated.version.name if updated.version is not None else None,
        )

    def _update(
        self,
        collection: Collection,
        documents: Sequence[tuple[Document, Sequence[Chunk]]],
        remove: Sequence[str],
    ) -> UpdateResult:
        """The index update, once no other writer holds the collection's index.

        Jobs are queued work, so one waits its turn where `chancery ingest` would give up: a
        replica's job or an ingest from the command line may hold the index for minutes.
        """
        deadline = time.monotonic() + self._writer_wait
        pause = _FIRST_PAUSE
        while True:
            try:
                return self._ingester.update(collection.index_dir, documents, remove=remove)
            except WriterBusyError as exc:
                if time.monotonic() + pause > deadline:
                    raise WriterBusyError(
                        f"another writer held the collection's index for over "
                        f"{self._writer_wait:g} s; submit the job again when it has finished"
                    ) from exc
                time.sleep(pause)
                pause = min(pause * 2, _LAST_PAUSE)

    def discard(self, spec: JobSpec) -> None:
        """Remove the staged files of a job that will never run."""
        with contextlib.suppress(CollectionError):
            staging = _staging(self._registry.get(spec.collection), spec)
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)


def _staging(collection: Collection, spec: JobSpec) -> Path | None:
    if spec.upload is None:
        if spec.files:
            raise JobFailedError("the job names files but no staging folder; upload them again")
        return None
    # The record is the server's own, but a folder name is never taken on trust as a path.
    if Path(spec.upload).name != spec.upload or spec.upload in ("", ".", ".."):
        raise JobFailedError(f"the job's staging folder {spec.upload!r} is not a folder name")
    return collection.uploads_dir / spec.upload


def _collect_garbage(collection: Collection, originals: Originals) -> None:
    try:
        removed = originals.collect_garbage(lambda: referenced_originals(collection.index_dir))
    except StoreError as exc:
        # An unreadable manifest: better keep every original than remove one a version names.
        log.warning("originals of collection %s kept: %s", collection.name, exc)
        return
    if removed:
        log.info("removed %d originals no longer indexed from %s", removed, collection.name)
