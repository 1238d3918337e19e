"""What the page viewer shows: a PDF page as an image, and where a quote stands on it.

`/documents/{doc_id}/pages/{n}/image` renders the page from the original file (kept by the
collection), and `/highlights` gives the quote's boxes on that image, or, for a page that has no
image, the quote's offsets in the page's stored text. Both exist under `/v1` and under
`/v1/collections/{name}`, like the other document routes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response

from service import lookup
from service.deps import EngineSource
from service.engine import Engine
from service.errors import InvalidRequestError, NotFoundError
from service.originals import document_format, kept_original
from service.page_images import A4_WIDTH_150_DPI, MAX_WIDTH, MIN_WIDTH, ImageKey, PageImages
from service.page_render import PageRenderError
from service.quotes import quote_span
from service.routers.mapping import highlights_out
from service.routers.openapi import errors
from service.schemas import HighlightsOut
from service.uploads import Originals

MAX_QUOTE_CHARS = 10_000
"""Far above any sentence; a URL carrying more would be refused by most clients anyway."""
CACHE_CONTROL = "private, no-cache"
"""Kept by the browser, but checked with its ETag on each use: the URL names the document,
not its bytes, and a new version of the file must not show the old page under new boxes."""

Width = Annotated[
    int,
    Query(
        ge=MIN_WIDTH,
        le=MAX_WIDTH,
        description=f"The image's width in pixels, {MIN_WIDTH} to {MAX_WIDTH}; the default is A4 "
        "at 150 dpi. The height follows the page's proportions.",
    ),
]
Offset = Annotated[
    int | None,
    Query(ge=0, description="The quote's offsets in the page's stored text (give both)."),
]
Quote = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_QUOTE_CHARS,
        description="The quote itself, found in the page's stored text (whitespace may differ); "
        "instead of start and end.",
    ),
]


def router(source: EngineSource, images: PageImages) -> APIRouter:
    """The routes, reading the index and the kept originals of the collection `source` gives."""
    routes = APIRouter(tags=["documents"])
    engine_of, originals_of = source.dependency, source.originals
    statuses = {404, 413, 422, 503, *source.errors}
    image_responses: dict[int | str, dict[str, Any]] = {
        200: {
            "description": f"The page as a PNG image ({images.media_type}), with an ETag.",
            "content": {images.media_type: {"schema": {"type": "string", "format": "binary"}}},
        },
        304: {"description": "The image the request's If-None-Match names is still current."},
        **errors(*statuses),
    }

    @routes.get(
        "/documents/{doc_id}/pages/{number}/image",
        response_class=Response,
        responses=image_responses,
    )
    def page_image(
        doc_id: str,
        number: int,
        engine: Engine = Depends(engine_of),
        originals: Originals | None = Depends(originals_of),
        width: Width = A4_WIDTH_150_DPI,
        if_none_match: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> Response:
        """The page rendered from the original PDF: for PDFs whose original the collection
        keeps (`has_page_images` in the document list); 404 otherwise, and the page's text is
        at /documents/{doc_id}/pages/{number}."""
        info, _ = lookup.page(engine.snapshot().index, doc_id, number)
        if document_format(info.file_name) != "pdf":
            raise NotFoundError(
                f"'{doc_id}' is not a PDF, so its pages have no image; its text is at "
                f"/documents/{doc_id}/pages/{number}"
            )
        kept = kept_original(originals, info.file_name, info.sha256)
        if kept is None:
            raise NotFoundError(_not_kept(originals, info.file_name))
        key = ImageKey(info.sha256, number, width)
        headers = {"ETag": key.etag, "Cache-Control": CACHE_CONTROL}
        if _matches(if_none_match, key.etag):
            return Response(status_code=304, headers=headers)
        try:
            data = images.image(kept.path, key)
        except PageRenderError as exc:
            raise NotFoundError(f"page {number} of '{doc_id}' cannot be drawn: {exc}") from exc
        return Response(content=data, media_type=images.media_type, headers=headers)

    @routes.get(
        "/documents/{doc_id}/pages/{number}/highlights",
        response_model=HighlightsOut,
        responses=errors(*statuses),
    )
    def page_highlights(
        doc_id: str,
        number: int,
        engine: Engine = Depends(engine_of),
        originals: Originals | None = Depends(originals_of),
        start: Offset = None,
        end: Offset = None,
        quote: Quote = None,
    ) -> HighlightsOut:
        """Where a quote stands on the page: its boxes on the page image (one per line), and
        its offsets in the page's stored text. Name the quote by `start` and `end` (a
        citation's `quote_start` and `quote_end`) or by `quote`."""
        info, page = lookup.page(engine.snapshot().index, doc_id, number)
        span = quote_span(page.text, start, end, quote)
        if span is None:
            raise InvalidRequestError(f"the quote is not on page {number} of '{doc_id}'")
        kept = None
        if document_format(info.file_name) == "pdf":
            kept = kept_original(originals, info.file_name, info.sha256)
        if kept is None:
            return highlights_out(doc_id, number, span, None)
        try:
            boxes = images.boxes(kept.path, number, page.text, *span)
        except PageRenderError as exc:
            raise NotFoundError(f"page {number} of '{doc_id}' cannot be read: {exc}") from exc
        return highlights_out(doc_id, number, span, boxes)

    return routes


def _not_kept(originals: Originals | None, file_name: str) -> str:
    if originals is None:
        return (
            "the original file is not kept for this index (a bare index folder keeps none), so "
            "its pages have no image; serve a data root (`chancery serve`) with the file "
            "ingested into a collection to see them"
        )
    return (
        f"the original of {file_name} is not kept in this collection (it was ingested before "
        "originals were kept); ingest or upload the file again to see its pages"
    )


def _matches(if_none_match: str | None, etag: str) -> bool:
    """Whether If-None-Match names `etag` (weakly compared, as RFC 9110 says for GET)."""
    if if_none_match is None:
        return False
    listed = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in listed or etag in listed
