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
from pathlib import Path
from typing import Any

from index.store import StoreError
from service.collections import Collection, CollectionError, CollectionRegistry
from service.ingester import Ingester
from service.jobs import FileResult, JobFailedError, JobOutcome, JobSpec
from service.uploads import Originals, referenced_originals

log = logging.getLogger("chancery")


class IngestJob:
    """`JobRunner`'s work for the collections of `registry`, ingesting with `ingester`."""

    def __init__(self, registry: CollectionRegistry[Any], ingester: Ingester) -> None:
        self._registry = registry
        self._ingester = ingester

    def __call__(self, spec: JobSpec) -> JobOutcome:
        try:
            collection = self._registry.get(spec.collection)
        except CollectionError as exc:
            raise JobFailedError(str(exc)) from exc
        staging = _staging(collection, spec)
        originals = Originals(collection.originals_dir)
        try:
            kept = [
                originals.keep(staging / file.name, file.sha256)
                for file in spec.files
                if staging is not None
            ]
            parsed = self._ingester.parse(kept)
            try:
                updated = self._ingester.update(
                    collection.index_dir, parsed.documents, remove=spec.remove
                )
            except StoreError as exc:
                # The index refused the change (a document id taken by another file name,
                # another writer at work): the message says what to do.
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
        removed = originals.collect_garbage(referenced_originals(collection.index_dir))
    except StoreError as exc:
        # An unreadable manifest: better keep every original than remove one a version names.
        log.warning("originals of collection %s kept: %s", collection.name, exc)
        return
    if removed:
        log.info("removed %d originals no longer indexed from %s", removed, collection.name)
