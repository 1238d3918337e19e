"""What an index holds: `/documents...` and the manifest at `/index`, under `/v1` and under
`/v1/collections/{name}`."""

from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath

from fastapi import APIRouter, Depends

from service import lookup
from service.access import current_key
from service.deps import EngineSource
from service.engine import Engine
from service.keys import KeyRecord, Scope
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
        """What built the index in service: model, chunking, documents; the library versions
        and a local model folder's path only for an admin key (or a server without keys)."""
        manifest = index_response(engine.snapshot().index)
        return manifest if shows_details(current_key()) else without_details(manifest)

    return routes


def shows_details(key: KeyRecord | None) -> bool:
    """Whether the caller sees what the server runs on: an admin key, or anyone on a server
    without keys (which listens on loopback only)."""
    return key is None or key.scope is Scope.ADMIN


def without_details(manifest: IndexResponse) -> IndexResponse:
    """The manifest without the library versions, and a model loaded from a local folder named
    by the folder alone, not its path on the server."""
    model_id = manifest.embedder.model_id
    if PurePosixPath(model_id).is_absolute() or PureWindowsPath(model_id).is_absolute():
        model_id = PureWindowsPath(model_id).name
    embedder = manifest.embedder.model_copy(update={"model_id": model_id})
    return manifest.model_copy(update={"libraries": None, "embedder": embedder})
