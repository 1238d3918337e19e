"""What an index holds: `/documents...` and the manifest at `/index`, under `/v1` and under
`/v1/collections/{name}`."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from service import lookup
from service.deps import EngineSource
from service.engine import Engine
from service.routers.mapping import (
    document_detail,
    documents_response,
    index_response,
    page_out,
)
from service.routers.openapi import errors
from service.schemas import DocumentDetail, DocumentsResponse, IndexResponse, PageOut
from service.uploads import Originals


def router(source: EngineSource) -> APIRouter:
    """The routes, reading the index of the engine `source` gives."""
    routes = APIRouter(tags=["documents"])
    engine_of = source.dependency
    listing = errors(*{413, 503, *source.errors})
    # 422 is listed where FastAPI would otherwise describe its own validation error body.
    lookups = errors(*{404, 413, 422, 503, *source.errors})

    originals_of = source.originals

    @routes.get("/documents", response_model=DocumentsResponse, responses=listing)
    def documents(
        engine: Engine = Depends(engine_of), originals: Originals | None = Depends(originals_of)
    ) -> DocumentsResponse:
        return documents_response(engine.snapshot().index, originals)

    @routes.get("/documents/{doc_id}", response_model=DocumentDetail, responses=lookups)
    def document(
        doc_id: str,
        engine: Engine = Depends(engine_of),
        originals: Originals | None = Depends(originals_of),
    ) -> DocumentDetail:
        return document_detail(lookup.document(engine.snapshot().index, doc_id), originals)

    @routes.get(
        "/documents/{doc_id}/pages/{number}",
        response_model=PageOut,
        responses=lookups,
    )
    def page(doc_id: str, number: int, engine: Engine = Depends(engine_of)) -> PageOut:
        """The stored text of one page: what a citation points to."""
        return page_out(*lookup.page(engine.snapshot().index, doc_id, number))

    @routes.get("/index", response_model=IndexResponse, responses=listing)
    def index_manifest(engine: Engine = Depends(engine_of)) -> IndexResponse:
        """What built the index in service: model, chunking, documents, library versions."""
        return index_response(engine.snapshot().index)

    return routes
