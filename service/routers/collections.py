"""Collections: `/v1/collections` lists and creates them, `/v1/collections/{name}` deletes one."""

from __future__ import annotations

from fastapi import APIRouter, Response

from service.access import current_key
from service.deps import CollectionName, Holdings
from service.routers.mapping import collection_out
from service.routers.openapi import errors
from service.schemas import CollectionCreate, CollectionOut, CollectionsResponse

router = APIRouter(tags=["collections"])


@router.get("/collections", response_model=CollectionsResponse, responses=errors(413, 503))
def collections(library: Holdings) -> CollectionsResponse:
    """Every collection the caller's key may use (all, without keys), with its index version
    and how many documents it holds."""
    key = current_key()
    shown = [c for c in library.collections() if key is None or key.sees(c.name)]
    return CollectionsResponse(collections=[collection_out(c) for c in shown])


@router.post(
    "/collections",
    status_code=201,
    response_model=CollectionOut,
    responses=errors(409, 413, 422),
)
def create_collection(request: CollectionCreate, library: Holdings) -> CollectionOut:
    """A new, empty collection; upload documents into it next."""
    return collection_out(library.create(request.name))


@router.delete(
    "/collections/{name}",
    status_code=204,
    response_class=Response,
    responses=errors(404, 409, 413, 422),
)
def delete_collection(name: CollectionName, library: Holdings) -> Response:
    """The collection with its index and originals; refused while it has jobs, and for
    `default`."""
    library.delete(name)
    return Response(status_code=204)
