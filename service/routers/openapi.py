"""The error responses each route documents, so that /openapi.json states every status it sends."""

from __future__ import annotations

from typing import Any

from service.schemas import ErrorOut

_ERRORS = {
    404: "No such document or page.",
    413: "The request body is over the size limit.",
    422: "The request is not valid; the detail says why.",
    503: "There is no usable index yet; the detail says what to do.",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error responses a route can give, for its OpenAPI description."""
    return {status: {"model": ErrorOut, "description": _ERRORS[status]} for status in statuses}
