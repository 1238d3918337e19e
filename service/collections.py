"""Named collections under one data root: each is an index folder plus the originals uploaded to it.

Layout of a data root DATA_ROOT (`CHANCERY_DATA_DIR`, read by the entry points only):

    DATA_ROOT/collections/NAME/index/       the index folder, as `chancery ingest --index` writes it
    DATA_ROOT/collections/NAME/originals/   the files as they came (uploads, `chancery ingest
                                            --collection`), content-addressed (service/uploads.py)
    DATA_ROOT/collections/NAME/uploads/     files of upload jobs that have not run yet
    DATA_ROOT/trash/                        collections being deleted

A collection name is 1 to 63 characters: lower-case ASCII letters, digits, `-` and `_`, starting
with a letter or a digit (`NAME_PATTERN`), and not a name Windows reserves for a device (`con`,
`nul`, `com1`, ...), so a data root can be copied anywhere. Anything else is refused before any
path is built from it; upper case is refused rather than folded, so one collection never answers
to two URLs.

A collection is deleted by renaming its folder into the trash (one atomic step: it is either
listed whole or gone) and only then removing the files. Deleting is refused, not cancelled, while
a request is storing files into the collection or one of its jobs is queued or running: a
cancelled ingest would still have to be waited for (the index writer cannot be stopped half-way
without leaving work for the next one), and a refusal tells the client what to do.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, NewType, TypeVar

from index.durable import fsync_dir
from service.errors import ChanceryError

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
"""Collection names (for OpenAPI too): lower-case letters, digits, `-`, `_`; 1-63 characters."""
RESERVED_NAMES = frozenset(
    {"con", "prn", "aux", "nul"} | {f"{port}{n}" for port in ("com", "lpt") for n in range(10)}
)
"""Device names on Windows, where a folder of that name cannot be created or copied."""
DEFAULT_COLLECTION = "default"
"""The collection the routes without a collection name answer from."""

CollectionName = NewType("CollectionName", str)
E = TypeVar("E")

_NAME = re.compile(NAME_PATTERN)
_COLLECTIONS = "collections"
_TRASH = "trash"
_INDEX = "index"
_ORIGINALS = "originals"
_UPLOADS = "uploads"
_SHOWN_CHARS = 40


class CollectionError(ChanceryError):
    """A collection cannot be used as asked; the message says why and what to do."""

    status = 400
    exit_code = 1


class InvalidCollectionNameError(CollectionError):
    status = 422
    exit_code = 2


class CollectionNotFoundError(CollectionError):
    status = 404


class CollectionExistsError(CollectionError):
    status = 409


class CollectionBusyError(CollectionError):
    """The collection is in use (files being stored, jobs queued or running) or protected."""

    status = 409


def parse_name(raw: object) -> CollectionName:
    """`raw` as a collection name, or InvalidCollectionNameError saying what a name may be."""
    if not isinstance(raw, str) or not _NAME.fullmatch(raw):
        shown = _shown(raw)
        hint = ""
        if isinstance(raw, str) and raw != raw.lower() and _NAME.fullmatch(raw.lower()):
            hint = f" (try '{raw.lower()}')"
        raise InvalidCollectionNameError(
            f"{shown} is not a collection name{hint}: a name has 1 to 63 characters, lower-case "
            "letters a-z, digits, '-' and '_', and starts with a letter or a digit"
        )
    if raw in RESERVED_NAMES:
        raise InvalidCollectionNameError(
            f"'{raw}' is a device name on Windows and cannot name a collection; choose another"
        )
    return CollectionName(raw)


def _shown(raw: object) -> str:
    """A refused name as the message shows it: quoted, escaped, cut short."""
    text = repr(raw) if isinstance(raw, str) else type(raw).__name__
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


@dataclass(frozen=True)
class Collection:
    name: CollectionName
    path: Path

    @property
    def index_dir(self) -> Path:
        return self.path / _INDEX

    @property
    def originals_dir(self) -> Path:
        return self.path / _ORIGINALS

    @property
    def uploads_dir(self) -> Path:
        return self.path / _UPLOADS

    def version(self) -> str | None:
        """The name of the index version in service (`v-...`), or None before the first ingest."""
        # Imported here: the index package loads FAISS and BM25 (half a second), which commands
        # that only name a collection should not pay for.
        from index.store import current_version

        version = current_version(self.index_dir)
        return version.name if version is not None else None


class CollectionRegistry(Generic[E]):
    """The collections under `data_root`, and one engine per collection, opened on first use.

    `open_engine` gets the collection (its name and index folder). It is called under the
    registry's lock, so it should be cheap: the service's Engine loads its index on the first
    request, not when it is made. `in_use` tells whether jobs of a collection are queued or
    running (the job runner's `busy`), so that such a collection is not deleted under them.
    """

    def __init__(
        self,
        data_root: Path,
        open_engine: Callable[[Collection], E],
        *,
        in_use: Callable[[str], bool] | None = None,
    ) -> None:
        self.data_root = data_root
        self._open_engine = open_engine
        self._in_use = in_use or _never
        self._lock = threading.Lock()
        self._engines: dict[str, E] = {}
        self._holds: dict[str, int] = {}

    @property
    def _collections(self) -> Path:
        return self.data_root / _COLLECTIONS

    def list(self) -> list[Collection]:
        """Every collection, by name; stray files and folders with other names are left out."""
        if not self._collections.is_dir():
            return []
        found = []
        for path in sorted(self._collections.iterdir()):
            if path.is_dir() and _NAME.fullmatch(path.name) and path.name not in RESERVED_NAMES:
                found.append(self._collection(CollectionName(path.name)))
        return found

    def get(self, name: str) -> Collection:
        collection = self._collection(parse_name(name))
        if not collection.path.is_dir():
            raise CollectionNotFoundError(
                f"no collection '{name}'; create it with POST /v1/collections "
                f"(collections: {self._known()})"
            )
        return collection

    def create(self, name: str) -> Collection:
        collection = self._collection(parse_name(name))
        self._collections.mkdir(parents=True, exist_ok=True)
        try:
            # mkdir is atomic and exclusive: of two concurrent creates, exactly one succeeds.
            collection.path.mkdir()
        except FileExistsError as exc:
            raise CollectionExistsError(f"a collection '{name}' already exists") from exc
        self._complete(collection)
        fsync_dir(self._collections)
        return collection

    def ensure_default(self) -> Collection:
        """The collection `default`, created when missing (at startup)."""
        with contextlib.suppress(CollectionExistsError):
            self.create(DEFAULT_COLLECTION)
        collection = self._collection(CollectionName(DEFAULT_COLLECTION))
        self._complete(collection)
        return collection

    @contextlib.contextmanager
    def using(self, name: str) -> Iterator[Collection]:
        """The collection, kept from being deleted until the block ends.

        An upload holds it from the first byte stored until its job is queued; from then on the
        job runner's `in_use` keeps it.
        """
        parsed = parse_name(name)
        with self._lock:
            collection = self.get(parsed)
            self._holds[parsed] = self._holds.get(parsed, 0) + 1
        try:
            yield collection
        finally:
            with self._lock:
                self._holds[parsed] -= 1
                if not self._holds[parsed]:
                    del self._holds[parsed]

    def delete(self, name: str) -> None:
        """Remove the collection: gone from the list at once, its files removed after."""
        parsed = parse_name(name)
        if parsed == DEFAULT_COLLECTION:
            raise CollectionBusyError(
                "the collection 'default' answers the routes without a collection name and "
                "cannot be deleted; delete its documents instead"
            )
        with self._lock:
            collection = self.get(parsed)
            if self._holds.get(parsed) or self._in_use(parsed):
                raise CollectionBusyError(
                    f"the collection '{parsed}' has an upload or ingest job in progress; "
                    "delete it when the job has finished (GET /v1/jobs/{id} shows its state)"
                )
            trash = self.data_root / _TRASH
            trash.mkdir(parents=True, exist_ok=True)
            doomed = trash / f"{parsed}-{secrets.token_hex(8)}"
            collection.path.rename(doomed)
            fsync_dir(self._collections)
            # Requests still holding the engine finish with it; it is freed when they let go.
            self._engines.pop(parsed, None)
        # The collection is already gone; files left by a failure here go with `sweep`.
        shutil.rmtree(doomed, ignore_errors=True)

    def sweep(self) -> None:
        """At startup, before any job runs: finish deletions a crash interrupted, and remove the
        files staged for upload jobs, which `JobStore.recover` has failed."""
        trash = self.data_root / _TRASH
        if trash.is_dir():
            for leftover in trash.iterdir():
                shutil.rmtree(leftover, ignore_errors=True)
        for collection in self.list():
            if collection.uploads_dir.is_dir():
                for staged in collection.uploads_dir.iterdir():
                    shutil.rmtree(staged, ignore_errors=True)

    def engine(self, name: str) -> E:
        """The collection's engine, opened on first use and then shared."""
        parsed = parse_name(name)
        with self._lock:
            engine = self._engines.get(parsed)
            if engine is None:
                # Checked under the lock that `delete` takes, so no engine outlives its folder.
                collection = self.get(parsed)
                engine = self._open_engine(collection)
                self._engines[parsed] = engine
            return engine

    def _collection(self, name: CollectionName) -> Collection:
        return Collection(name, self._collections / name)

    def _complete(self, collection: Collection) -> None:
        # A crash between creating the folder and its parts leaves them missing; make them here.
        for part in (collection.index_dir, collection.originals_dir, collection.uploads_dir):
            part.mkdir(exist_ok=True)

    def _known(self) -> str:
        names = [collection.name for collection in self.list()]
        return ", ".join(names) if names else "none"


def _never(_: str) -> bool:
    return False
