"""The MCP server: search, answers with their citations, pages and documents as tools an assistant
calls, on the official SDK's `MCPServer` (FastMCP before mcp 2).

One server definition serves both transports: `chancery mcp` runs it over stdio for one
collection (`service.mcp_stdio`), and the app mounts it at `/mcp` over streamable HTTP for every
collection of its library (`service.mcp_http`). The tools call the engines the HTTP routes call,
in process, and return the HTTP API's response models as structured content (each tool publishes
its output schema), beside a text block written for the model that reads it. A failure the caller
can act on (an unknown collection or document, a page out of range, a blank question) comes back
as a tool error (`isError`) whose text says what is wrong; the server goes on serving.

Given an audit log (the app's), every tool call and resource read is recorded as the HTTP routes
record theirs, under the route `/mcp tool:NAME` (`/mcp resource:NAME`), before its result goes
back: who called (the key and request id of the HTTP request that carried the call), the
collection, the question, the answer with its citations (or the pages returned), the status
(that of the error, for a call that failed) and the time taken.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Annotated, Any, Protocol

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field
from starlette.requests import Request

from index.modes import Mode
from service import lookup
from service.audit import AuditError, AuditEvent, AuditLog
from service.auditing import Caller, answered, called, mcp_caller, searched
from service.engine import AskResult, Engine
from service.errors import translate
from service.library import CollectionInfo
from service.passages import PassageOut, PassagesFound, passage_out, search_passages
from service.routers.mapping import citation_out, collection_out, documents_response, page_out
from service.schemas import (
    AnswererName,
    CitationOut,
    CollectionsResponse,
    DocumentsResponse,
    PageOut,
    Question,
)
from service.uploads import Originals

SERVER_NAME = "chancery"
INSTRUCTIONS = (
    "Chancery answers questions from the documents (reports, strategies) of its collections. "
    "Call `ask` for a short answer in which every sentence carries a marker [n] citing a "
    "document, a 1-based page and a verbatim quote; cite those to the user. Call `search` for "
    "the best passages, `get_page` to read a cited page in full, `list_documents` and "
    "`list_collections` to see what can be asked about."
)
_READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, openWorldHint=False)
_PREVIEW_CHARS = 300
_SHOWN_PASSAGES = 3
"""The closest passages an abstention lists in its text, as `chancery ask` does."""


class Holdings(Protocol):
    """What the tools read from: a server's `Library`, or the one collection of `chancery mcp`."""

    def engine(self, name: str) -> Engine: ...

    def originals(self, name: str) -> Originals | None: ...

    def collections(self) -> list[CollectionInfo]: ...


class AskOut(BaseModel):
    """An answer and its citations: what `/v1/ask` returns, less the passages."""

    answer: str = Field(description="The answer; each cited sentence ends with markers [n].")
    abstained: bool = Field(description="True when the documents do not answer the question.")
    citations: list[CitationOut]
    answerer: AnswererName
    fallback: str | None = Field(
        description="Why the answerer asked for did not write the answer, when another did."
    )
    notes: list[str]
    collection: str
    index_version: str


CollectionArgument = Annotated[
    str | None,
    Field(
        description="The collection to read (list_collections names them); default: the server's."
    ),
]
DocsArgument = Annotated[
    list[str] | None,
    Field(description="Only these documents (ids or file names).", min_length=1, max_length=100),
]
ToolContext = Context[Any, Any]
"""The SDK passes it to the tools that take it (it is not in their input schemas)."""

log = logging.getLogger("chancery")


def build_mcp_server(
    holdings: Callable[[], Holdings],
    default_collection: str,
    lifespan: Callable[[MCPServer[Any]], AbstractAsyncContextManager[Any]] | None = None,
    audit: AuditLog | None = None,
) -> MCPServer[Any]:
    """The server, answering from what `holdings` returns when a tool runs (an app's library
    exists only once the app has started); tools that name no collection read
    `default_collection`; each call (of a tool, or a resource read) is recorded in `audit`,
    when given."""
    server: MCPServer[Any] = _quietly(
        lambda: MCPServer(
            SERVER_NAME, instructions=INSTRUCTIONS, version="0.1.0", lifespan=lifespan
        )
    )

    def engine(collection: str | None) -> Engine:
        return holdings().engine(collection or default_collection)

    def audited(
        ctx: ToolContext, call: str, collection: str | None, question: str | None = None
    ) -> _Audited:
        return _Audited(audit, ctx, call, collection, question)

    @server.tool(annotations=_READ_ONLY)
    def search(
        ctx: ToolContext,
        question: Question,
        k: Annotated[int, Field(ge=1, le=100, description="Passages to return.")] = 10,
        collection: CollectionArgument = None,
        docs: DocsArgument = None,
    ) -> Annotated[CallToolResult, PassagesFound]:
        """The passages of the documents that best match the question (hybrid dense and BM25
        search), each with its document, pages, heading and score."""
        with (
            _reported(),
            audited(ctx, "tool:search", collection or default_collection, question) as call,
        ):
            found = search_passages(engine(collection), question, k, Mode.HYBRID, docs)
            pages = [(p.doc, p.page_start) for p in found.passages]
            call.done(
                searched(
                    call.who, question, found.collection, found.index_version, pages, call.started
                )
            )
        return _result(found, _passages_text(found.passages))

    @server.tool(annotations=_READ_ONLY)
    def ask(
        ctx: ToolContext,
        question: Question,
        collection: CollectionArgument = None,
        answerer: Annotated[
            AnswererName | None,
            Field(
                description="`extractive` (sentences quoted from the documents) or `generative` "
                "(an LLM's sentences, each verified; only where the server has an LLM). "
                "Default: the server's."
            ),
        ] = None,
        docs: DocsArgument = None,
    ) -> Annotated[CallToolResult, AskOut]:
        """A short answer from the documents. Each sentence ends with markers [n]; citation n
        gives its document (doc_id, file name, title), the 1-based page, the printed page label
        and the verbatim quote the sentence rests on, at quote_start:quote_end of the page's
        text (get_page). When the documents do not answer, `abstained` is true."""
        with (
            _reported(),
            audited(ctx, "tool:ask", collection or default_collection, question) as call,
        ):
            result = engine(collection).ask(question, docs=docs, answerer=answerer)
            out = _ask_out(result)
            text = _answer_text(out)
            if out.abstained and result.answer.passages:
                # What `chancery ask` shows too: where the documents came closest.
                records = engine(collection).snapshot().index.records
                closest = result.answer.passages[:_SHOWN_PASSAGES]
                passages = [passage_out(hit, records) for hit in closest]
                text += "\n\nThe closest passages:\n" + _passages_text(passages, preview=True)
            call.done(answered(call.who, question, result, call.started))
        return _result(out, text)

    @server.tool(annotations=_READ_ONLY)
    def get_page(
        ctx: ToolContext,
        doc_id: Annotated[str, Field(description="The document's id (doc_id of a citation).")],
        page: Annotated[int, Field(description="The 1-based page, as a citation gives it.")],
        collection: CollectionArgument = None,
    ) -> Annotated[CallToolResult, PageOut]:
        """The stored text of one page, as citations quote it, with its printed label and
        headings."""
        with _reported(), audited(ctx, "tool:get_page", collection or default_collection) as call:
            out = _page(engine(collection), doc_id, page)
            call.pages = [(out.doc, out.number)]
        label = f" (printed {out.label})" if out.label and out.label != str(out.number) else ""
        return _result(out, f"{out.doc} ({out.doc_id}), page {out.number}{label}:\n\n{out.text}")

    @server.tool(annotations=_READ_ONLY)
    def list_documents(
        ctx: ToolContext,
        collection: CollectionArgument = None,
    ) -> Annotated[CallToolResult, DocumentsResponse]:
        """The documents of a collection: id, file name, title and page count of each."""
        name = collection or default_collection
        with _reported(), audited(ctx, "tool:list_documents", name):
            held = holdings()
            out = documents_response(held.engine(name).snapshot().index, held.originals(name))
        lines = [
            f"{d.doc_id}: “{d.title}” ({d.file_name}, {d.pages} page{'' if d.pages == 1 else 's'})"
            for d in out.documents
        ]
        return _result(out, "\n".join(lines) or f"The collection '{name}' holds no documents.")

    @server.tool(annotations=_READ_ONLY)
    def list_collections(ctx: ToolContext) -> Annotated[CallToolResult, CollectionsResponse]:
        """The collections this server answers from, with their document counts."""
        with _reported(), audited(ctx, "tool:list_collections", None):
            out = CollectionsResponse(
                collections=[collection_out(c) for c in holdings().collections()]
            )
        lines = [f"{c.name}: {c.documents} documents" for c in out.collections]
        return _result(out, "\n".join(lines))

    @server.resource(
        "chancery://{collection}/documents/{doc_id}/pages/{page}",
        name="page",
        description="The stored text of one page of a document, as citations quote it.",
        mime_type="text/plain",
    )
    def page_resource(ctx: ToolContext, collection: str, doc_id: str, page: int) -> str:
        with _reported(ResourceError), audited(ctx, "resource:page", collection) as call:
            out = _page(holdings().engine(collection), doc_id, page)
            call.pages = [(out.doc, out.number)]
        return out.text

    @server.resource(
        "chancery://{collection}/documents",
        name="documents",
        description="The documents of a collection, as list_documents returns them.",
        mime_type="application/json",
    )
    def documents_resource(ctx: ToolContext, collection: str) -> str:
        with _reported(ResourceError), audited(ctx, "resource:documents", collection):
            held = holdings()
            index = held.engine(collection).snapshot().index
            return documents_response(index, held.originals(collection)).model_dump_json()

    return server


def _quietly(build: Callable[[], MCPServer[Any]]) -> MCPServer[Any]:
    """`build()`, leaving the root logger as it was: MCPServer calls `logging.basicConfig`,
    which would print every library's INFO records (each LLM request, for one) in a service
    that leaves logging to uvicorn and the command line."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        return build()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@contextmanager
def _reported(error: type[Exception] = ToolError) -> Iterator[None]:
    """Chancery's errors as `error` (a tool error, which the model reads, or a resource error),
    keeping their message, which says what to do; anything else is a bug, which the SDK reports
    without its text."""
    try:
        yield
    except Exception as exc:
        translated = translate(exc)
        if translated is None:
            raise
        raise error(str(translated)) from exc


class _Audited:
    """Records one call (of a tool, or a resource read) in the audit log as it ends: the event
    the tool made (`done`), or a plain record of the call, with the status of the error when it
    failed. A record that
    cannot be written fails the call, as it fails an HTTP request: nothing is answered
    unrecorded."""

    def __init__(
        self,
        audit: AuditLog | None,
        ctx: ToolContext,
        call: str,
        collection: str | None,
        question: str | None,
    ) -> None:
        self._audit = audit
        self._collection = collection
        self._question = question
        self.who: Caller = mcp_caller(_http_request(ctx), call)
        self.started = time.perf_counter()
        self.pages: list[tuple[str, int]] = []
        self._event: AuditEvent | None = None

    def done(self, event: AuditEvent) -> None:
        self._event = event

    def __enter__(self) -> _Audited:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: Any
    ) -> None:
        if self._audit is None:
            return
        if error is None:
            self._audit.record(self._event or self._called())
            return
        if not isinstance(error, Exception):
            return  # cancelled or stopping: no outcome to record
        translated = translate(error)
        try:
            self._audit.record(self._called(translated.status if translated else 500))
        except AuditError as exc:
            # The call fails anyway, with its own error; this one goes to the server's log.
            log.error("a failed MCP tool call went unrecorded: %s", exc)

    def _called(self, status: int = 200) -> AuditEvent:
        return called(
            self.who,
            self._collection,
            self.started,
            status=status,
            question=self._question,
            pages=self.pages,
        )


def _http_request(ctx: ToolContext) -> Request | None:
    """The HTTP request that carried the call; None over stdio."""
    try:
        request = ctx.request_context.request
    except ValueError:
        return None  # no request context: a tool called directly, outside a session
    return request if isinstance(request, Request) else None


def _page(engine: Engine, doc_id: str, number: int) -> PageOut:
    return page_out(*lookup.page(engine.snapshot().index, doc_id, number))


def _ask_out(result: AskResult) -> AskOut:
    answer = result.answer
    return AskOut.model_validate(
        {
            "answer": answer.text,
            "abstained": answer.abstained,
            "citations": [citation_out(n, c) for n, c in enumerate(answer.citations, start=1)],
            "answerer": answer.answerer,
            "fallback": answer.fallback,
            "notes": list(answer.notes),
            "collection": result.collection,
            "index_version": result.index_version,
        }
    )


def _result(structured: BaseModel, text: str) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=structured.model_dump(mode="json"),
    )


def _answer_text(out: AskOut) -> str:
    lines = [out.answer]
    if out.citations:
        lines.append("\nSources:")
    for c in out.citations:
        label = f" (printed {c.page_label})" if c.page_label and c.page_label != str(c.page) else ""
        lines.append(
            f"[{c.n}] “{c.title}” ({c.doc}, doc_id {c.doc_id}), page {c.page}{label}: “{c.quote}”"
        )
    if out.fallback:
        lines.append(f"\n(answered by the {out.answerer} answerer: {out.fallback})")
    lines.extend(f"\n({note})" for note in out.notes)
    return "\n".join(lines)


def _passages_text(passages: list[PassageOut], *, preview: bool = False) -> str:
    blocks = []
    for rank, p in enumerate(passages, start=1):
        pages = (
            f"p. {p.page_start}"
            if p.page_start == p.page_end
            else f"pp. {p.page_start}-{p.page_end}"
        )
        heading = f", {p.heading}" if p.heading else ""
        text = _preview(p.text) if preview else p.text
        blocks.append(f"({rank}) {p.doc} (doc_id {p.doc_id}), {pages}{heading}:\n{text}")
    return "\n\n".join(blocks) or "No passage matches."


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _PREVIEW_CHARS else flat[: _PREVIEW_CHARS - 1] + "…"
