"""Collections: `/v1/collections` lists and creates them, `/v1/collections/{name}` deletes one."""

from __future__ import annotations

from fastapi import APIRouter, Response

from service.deps import CollectionName, Holdings
from service.routers.mapping import collection_out
from service.routers.openapi import errors
from service.schemas import CollectionCreate, CollectionOut, CollectionsResponse

router = APIRouter(tags=["collections"])


@router.get("/collections", response_model=CollectionsResponse, responses=errors(413, 503))
def collections(library: Holdings) -> CollectionsResponse:
    """Every collection, with its index version and how many documents it holds."""
    return CollectionsResponse(collections=[collection_out(c) for c in library.collections()])


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
