"""What the audit log records of each request, made from the request and its result.

Routes call these before they send their response (a stream: before its last event), so that a
request a client saw acknowledged is on disk even if the server is killed the next instant
(`AuditLog.record` returns after the commit is fsynced). The key, the request id and the client
address come from the request, as the access and request-id middlewares left them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TypedDict

from starlette.requests import Request

from service.access import current_key
from service.answering import Answer
from service.audit import AuditCitation, AuditEvent, AuditLog
from service.engine import AskResult
from service.request_context import current_request_id


def audit_log(request: Request) -> AuditLog | None:
    """The app's audit log; None for an app built without one (tests of single routes)."""
    log: AuditLog | None = getattr(request.app.state, "audit", None)
    return log


class Caller(TypedDict):
    key: str | None
    request_id: str | None
    client: str | None
    route: str
    method: str


def caller(request: Request) -> Caller:
    """Who asked: the key's name, the request id, the client address, the route template."""
    key = current_key()
    route = request.scope.get("route")
    client = request.client
    return Caller(
        key=key.name if key else None,
        request_id=current_request_id(),
        client=client.host if client else None,
        route=str(getattr(route, "path", request.url.path)),
        method=request.method,
    )


def answered(
    who: Caller, question: str, result: AskResult, started: float, status: int = 200
) -> AuditEvent:
    answer = result.answer
    return AuditEvent(
        **who,
        status=status,
        collection=result.collection,
        question=question,
        answerer=answer.answerer,
        answer=answer.text,
        citations=_citations(answer),
        abstained=answer.abstained,
        index_version=result.index_version,
        latency_ms=_ms(started),
    )


def searched(
    who: Caller,
    question: str,
    collection: str,
    index_version: str,
    pages: Sequence[tuple[str, int]],
    started: float,
) -> AuditEvent:
    """A search: the passages' documents and first pages stand in for citations."""
    return AuditEvent(
        **who,
        status=200,
        collection=collection,
        question=question,
        citations=tuple(AuditCitation(doc=doc, page=page) for doc, page in pages),
        index_version=index_version,
        latency_ms=_ms(started),
    )


def job_submitted(
    who: Caller,
    collection: str,
    job_id: str,
    started: float,
    *,
    files: Sequence[str] = (),
    doc_ids: Sequence[str] = (),
    status: int = 202,
) -> AuditEvent:
    return AuditEvent(
        **who,
        status=status,
        collection=collection,
        files=tuple(files),
        doc_ids=tuple(doc_ids),
        job_id=job_id,
        latency_ms=_ms(started),
    )


def _citations(answer: Answer) -> tuple[AuditCitation, ...]:
    return tuple(AuditCitation(doc=c.doc, page=c.page, quote=c.quote) for c in answer.citations)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
