"""What the audit log records of each request, made from the request and its result.

Routes call these before they send their response (a stream: before its last event), so that a
request a client saw acknowledged is on disk even if the server is killed the next instant
(`AuditLog.record` returns after the commit is fsynced). The key, the request id and the client
address come from the request, as the access and request-id middlewares left them. The MCP tools
(`service.mcp_server`) record their calls with the same events, under the route `/mcp tool:NAME`;
the access middleware records the requests it refuses itself (`service.access`).
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
from service.keys import KeyRecord
from service.request_context import current_request_id
from service.route_template import route_template


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
    client = request.client
    return Caller(
        key=key.name if key else None,
        request_id=current_request_id(),
        client=client.host if client else None,
        route=route_template(request.scope) or request.url.path,
        method=request.method,
    )


def mcp_caller(request: Request | None, call: str) -> Caller:
    """Who made an MCP call (`call`: `tool:ask`, `resource:page`). Over HTTP, `request` is the
    one that carried the call, and the key and request id are read from what the middlewares
    left on it, not from their context variables: those hold only in that request's own task,
    and the SDK does not promise to run the call there (its sessions outlive requests). Without
    a request (stdio), the caller is local."""
    if request is None:
        key = current_key()
        return Caller(
            key=key.name if key else None,
            request_id=current_request_id(),
            client=None,
            route=call,
            method="CALL",
        )
    state = request.scope.get("state") or {}
    record = state.get("key")
    client = request.client
    return Caller(
        key=record.name if isinstance(record, KeyRecord) else None,
        request_id=state.get("request_id"),
        client=client.host if client else None,
        route=f"{request.url.path} {call}",
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


def called(
    who: Caller,
    collection: str | None,
    started: float,
    *,
    status: int = 200,
    question: str | None = None,
    pages: Sequence[tuple[str, int]] = (),
) -> AuditEvent:
    """A call that is neither an answer nor a search (a page read, a listing), or one that
    failed with `status`: what was asked of which collection, and the pages it returned."""
    return AuditEvent(
        **who,
        status=status,
        collection=collection,
        question=question,
        citations=tuple(AuditCitation(doc=doc, page=page) for doc, page in pages),
        latency_ms=_ms(started),
    )


def _citations(answer: Answer) -> tuple[AuditCitation, ...]:
    return tuple(AuditCitation(doc=c.doc, page=c.page, quote=c.quote) for c in answer.citations)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
