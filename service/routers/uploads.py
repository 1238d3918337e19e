"""Changing a collection: upload files (`POST .../documents`) and delete a document (`DELETE
.../documents/{doc_id}`); each queues a job and answers 202 with where to follow it."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response

from service.audit import AuditEvent
from service.auditing import audit_log, caller, job_submitted
from service.deps import CollectionName, Holdings
from service.jobs import Job
from service.multipart import FILES_FIELD, file_parts
from service.routers.mapping import job_accepted, job_url
from service.routers.openapi import accepted, errors
from service.schemas import JobAccepted
from service.uploads import MiB, UploadLimits


def router(limits: UploadLimits) -> APIRouter:
    """The routes, with `limits` stated in the description of the upload body."""
    routes = APIRouter(tags=["documents"])

    @routes.post(
        "/collections/{name}/documents",
        status_code=202,
        response_model=JobAccepted,
        responses={**accepted(), **errors(404, 409, 413, 422, 429, 503)},
        openapi_extra={"requestBody": _upload_body(limits)},
    )
    async def upload(
        name: CollectionName, request: Request, response: Response, library: Holdings
    ) -> JobAccepted:
        """Add or replace documents: one or many files, ingested by a job."""
        # The body is read as the files are staged, never before: the collection is checked
        # first, and a file over a limit stops the reading there.
        started = time.perf_counter()
        files = file_parts(request.headers.get("content-type"), request.stream())
        job = await library.upload(name, files)
        await _record(request, job, started)
        return _queued(job, response)

    @routes.delete(
        "/collections/{name}/documents/{doc_id}",
        status_code=202,
        response_model=JobAccepted,
        responses={**accepted(), **errors(404, 409, 413, 422, 429, 503)},
    )
    def delete_document(
        name: CollectionName,
        doc_id: str,
        request: Request,
        response: Response,
        library: Holdings,
    ) -> JobAccepted:
        """Remove a document from the collection, by a job."""
        started = time.perf_counter()
        job = library.remove(name, doc_id)
        log = audit_log(request)
        if log is not None:
            log.record(_event(request, job, started))
        return _queued(job, response)

    return routes


async def _record(request: Request, job: Job, started: float) -> None:
    log = audit_log(request)
    if log is not None:
        await log.record_async(_event(request, job, started))


def _event(request: Request, job: Job, started: float) -> AuditEvent:
    """The job as the audit log keeps it: the files sent, or the documents removed."""
    return job_submitted(
        caller(request),
        job.spec.collection,
        job.id,
        started,
        files=[staged.name for staged in job.spec.files],
        doc_ids=list(job.spec.remove),
    )


def _queued(job: Job, response: Response) -> JobAccepted:
    response.headers["Location"] = job_url(job.id)
    return job_accepted(job)


def _upload_body(limits: UploadLimits) -> dict[str, Any]:
    return {
        "required": True,
        "description": (
            f"The files, each a part named `{FILES_FIELD}` with a file name: at most "
            f"{limits.max_files} files and {_size(limits.max_total_bytes)} in all, each at "
            f"most {_size(limits.max_file_bytes)} (413 beyond). PDF, Word (.docx), HTML, "
            "Markdown or plain text, known by their bytes, not their names; a file that is "
            "none of them is reported failed in the job."
        ),
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        FILES_FIELD: {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "minItems": 1,
                            "maxItems": limits.max_files,
                        }
                    },
                    "required": [FILES_FIELD],
                    "additionalProperties": False,
                }
            }
        },
    }


def _size(count: int) -> str:
    return f"{count / MiB:g} MiB" if count >= MiB else f"{count} bytes"
