"""The responses each route documents, so that /openapi.json states every status it sends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from service.schemas import ErrorOut

_ERRORS = {
    400: "The request asks for something this server does not offer (a generative answer "
    "without an LLM configured); the detail says what to set.",
    404: "No such collection, document, page or job; the detail says which.",
    409: "The collection's state does not allow it: it exists already, has an upload or job in "
    "progress, or cannot be changed on this server; the detail says what to do.",
    413: "The request body, or a file in it, is over a size limit; the detail says which.",
    422: "The request is not valid; the detail says why.",
    429: "As many jobs are waiting as the server queues; try again when one has finished.",
    503: "There is no usable index yet, the LLM failed (unreachable, too slow, in error) and "
    "no fallback is configured, or the server is shutting down; the detail says which.",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error responses a route can give, for its OpenAPI description."""
    return {
        status: {"model": ErrorOut, "description": _ERRORS[status]} for status in sorted(statuses)
    }


def accepted() -> dict[int | str, dict[str, Any]]:
    """The 202 of a route that queues a job: its body (the route's model) and `Location`."""
    return {
        202: {
            "description": "The job is queued; poll the URL in `Location` (and `url`) for its "
            "state.",
            "headers": {
                "Location": {
                    "description": "The job: /v1/jobs/{job_id}.",
                    "schema": {"type": "string"},
                }
            },
        }
    }


def event_stream(
    description: str, events: Mapping[str, type[BaseModel]]
) -> dict[int | str, dict[str, Any]]:
    """A 200 that is JSON (the route's model) or, when the request asks for it, server-sent
    events, each described as OpenAPI 3.1 describes an item of `text/event-stream`: its `event`
    name and its `data`, one JSON document of that event's model."""
    schema = {"oneOf": [_event_schema(name, model) for name, model in events.items()]}
    return {200: {"description": description, "content": {"text/event-stream": {"schema": schema}}}}


def _event_schema(name: str, model: type[BaseModel]) -> dict[str, Any]:
    data = model.model_json_schema(
        ref_template="#/components/schemas/{model}", mode="serialization"
    )
    # The models it refers to (HitOut, CitationOut) are the JSON answer's, in the components.
    data.pop("$defs", None)
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"const": name},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": data,
            },
        },
    }
