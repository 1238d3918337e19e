"""Jobs: `/v1/jobs/{job_id}`, the state and results of an upload or removal."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import Holdings
from service.routers.mapping import job_out
from service.routers.openapi import errors
from service.schemas import JobOut

router = APIRouter(tags=["jobs"])


@router.get("/jobs/{job_id}", response_model=JobOut, responses=errors(404, 413, 422))
def job(job_id: str, library: Holdings) -> JobOut:
    """A job's state, each file's result and the index version it wrote; kept after restarts."""
    return job_out(library.job(job_id))
