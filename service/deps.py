"""What routes share, as FastAPI dependencies: the engine of a collection, and the settings.

Routes never reach into `app.state` themselves; when the service holds several collections,
`engine_of` is the one function that learns to look them up.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.engine import DEFAULT_COLLECTION, Engine
from service.errors import NotFoundError
from service.settings import Settings


def engine_of(request: Request, collection: str) -> Engine:
    """The engine that answers for `collection`; one collection for now."""
    engine: Engine = request.app.state.engine
    if collection != engine.collection:
        raise NotFoundError(f"no collection '{collection}' (collections: {engine.collection})")
    return engine


def default_engine(request: Request) -> Engine:
    return engine_of(request, DEFAULT_COLLECTION)


def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Live = Annotated[Engine, Depends(default_engine)]
"""The engine of the default collection, for routes that take no collection name."""
AppSettings = Annotated[Settings, Depends(app_settings)]
