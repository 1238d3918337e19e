"""What the index holds: `/v1/documents...` and the manifest at `/v1/index`."""

from __future__ import annotations

from fastapi import APIRouter

from service import lookup
from service.deps import Live
from service.routers.mapping import (
    document_detail,
    documents_response,
    index_response,
    page_out,
)
from service.routers.openapi import errors
from service.schemas import DocumentDetail, DocumentsResponse, IndexResponse, PageOut

router = APIRouter(tags=["documents"])


@router.get("/documents", response_model=DocumentsResponse, responses=errors(413, 503))
def documents(engine: Live) -> DocumentsResponse:
    return documents_response(engine.snapshot().index)


# 422 is listed where FastAPI would otherwise describe its own validation error body.
@router.get(
    "/documents/{doc_id}", response_model=DocumentDetail, responses=errors(404, 413, 422, 503)
)
def document(doc_id: str, engine: Live) -> DocumentDetail:
    return document_detail(lookup.document(engine.snapshot().index, doc_id))


@router.get(
    "/documents/{doc_id}/pages/{number}",
    response_model=PageOut,
    responses=errors(404, 413, 422, 503),
)
def page(doc_id: str, number: int, engine: Live) -> PageOut:
    """The stored text of one page: what a citation points to."""
    return page_out(*lookup.page(engine.snapshot().index, doc_id, number))


@router.get("/index", response_model=IndexResponse, responses=errors(413, 503))
def index_manifest(engine: Live) -> IndexResponse:
    """What built the index in service: model, chunking, documents, library versions."""
    return index_response(engine.snapshot().index)
