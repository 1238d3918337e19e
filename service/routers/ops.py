"""Operations: is the process up (`/healthz`), can it answer (`/readyz`), the metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from service.deps import default_engine
from service.engine import Engine
from service.metrics import Metrics, render
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


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus metrics: requests, latencies per stage, abstentions, verification drops,
    ingest jobs, each collection's index (an admin key, when keys exist)."""
    registry: Metrics = request.app.state.metrics
    body, media_type = render(registry)
    return Response(body, media_type=media_type)
