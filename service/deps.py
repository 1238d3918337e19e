"""What routes share, as FastAPI dependencies: the library, a collection's engine, the settings.

Routes never reach into `app.state` themselves. A route that answers from an index takes its
engine from a dependency: `default_engine` for the routes without a collection name,
`collection_engine` for those under `/v1/collections/{name}`; the routers are built once for
each (`answers.router(DEFAULT_ENGINE)`), so both share one body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi import Path as PathParameter

from service.collections import DEFAULT_COLLECTION, NAME_PATTERN
from service.engine import Engine
from service.library import Library
from service.schemas import COLLECTION_NAME_HELP, NOT_RESERVED
from service.settings import Settings
from service.uploads import Originals


# Coroutines though they do no I/O: FastAPI runs a plain function dependency on a worker thread,
# and every request would pay a thread hop (and a turn at the GIL) for an attribute read.
async def library_of(request: Request) -> Library:
    library: Library = request.app.state.library
    return library


async def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Holdings = Annotated[Library, Depends(library_of)]
"""What the app serves: its collections, their engines and jobs."""
AppSettings = Annotated[Settings, Depends(app_settings)]
CollectionName = Annotated[
    str,
    PathParameter(
        pattern=NAME_PATTERN,
        description=f"The collection: {COLLECTION_NAME_HELP}",
        examples=[DEFAULT_COLLECTION],
        json_schema_extra=NOT_RESERVED,
    ),
]
"""A collection name in a path: anything else is a 422 before a route runs."""


def default_engine(library: Holdings) -> Engine:
    """The engine of the collection `default`, for the routes that name no collection."""
    return library.engine(DEFAULT_COLLECTION)


def collection_engine(name: CollectionName, library: Holdings) -> Engine:
    return library.engine(name)


def default_originals(library: Holdings) -> Originals | None:
    """The original files `default` keeps (None when the server serves a bare index)."""
    return library.originals(DEFAULT_COLLECTION)


def collection_originals(name: CollectionName, library: Holdings) -> Originals | None:
    return library.originals(name)


@dataclass(frozen=True)
class EngineSource:
    """Where a router's engine comes from, and the errors finding it can answer; `originals`,
    the collection's kept files, comes from the same place."""

    dependency: Callable[..., Engine]
    errors: tuple[int, ...]
    originals: Callable[..., Originals | None]


DEFAULT_ENGINE = EngineSource(default_engine, (), default_originals)
NAMED_ENGINE = EngineSource(collection_engine, (404, 422), collection_originals)
"""An unknown collection is a 404, a malformed name a 422."""
