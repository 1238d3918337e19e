"""Operations: is the process up (`/healthz`), can it answer (`/readyz`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from service.deps import default_engine
from service.engine import Engine
from service.routers.openapi import errors
from service.schemas import HealthResponse, ReadyResponse

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthResponse, responses=errors(413))
def healthz() -> HealthResponse:
    """The process is up."""
    return HealthResponse(status="ok")


@router.get("/readyz", response_model=ReadyResponse, responses=errors(413, 503))
def readyz(engine: Engine = Depends(default_engine)) -> ReadyResponse:
    """The model is loaded and the collection `default` has an index ready to answer."""
    return ReadyResponse(status="ready", index_version=engine.snapshot().index.version)
