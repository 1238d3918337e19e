"""The responses each route documents, so that /openapi.json states every status it sends.

The access middleware (`service.access`) answers 401, 403 and 429 before any route runs, so no
route declares them: `install` adds them, and the bearer key they ask for, to every operation
the policy protects, asking the policy itself (`rule_for`) so the description cannot drift
from what the server does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from service.access import POLICY, Rule, rule_for
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


BEARER = "apiKey"
"""The name of the security scheme in `components.securitySchemes`."""
_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key, sent as `Authorization: Bearer <key>`; `chancery keys create` "
    "makes one. A server with no keys asks for none (it then listens on loopback only).",
}
_ERROR_OUT = "#/components/schemas/ErrorOut"
_ACCESS: dict[str, dict[str, Any]] = {
    "401": {
        "description": "This server has API keys and the request has none, or not a valid one "
        "(unknown, malformed or revoked); the detail says which. `WWW-Authenticate` names the "
        "scheme.",
        "headers": {
            "WWW-Authenticate": {
                "description": 'The scheme to authenticate with: `Bearer realm="chancery"`.',
                "required": True,
                "schema": {"type": "string"},
            }
        },
    },
    "403": {
        "description": "The key is valid, but its scope or its collections do not allow this "
        "request; the detail says what it needs.",
    },
    "429": {
        "description": "Too many requests: over the rate limit (per key, or per address on a "
        "server without keys), or too many failed attempts to authenticate from this address; "
        "`Retry-After` gives the seconds to wait.",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before trying again (sent with a refusal for the "
                "rate limit or for failed attempts).",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    },
}
_PARAMETER = re.compile(r"\{[^{}/]+\}")
_FILLED = "x"
"""Any value of a path parameter: the policy tells routes apart by their fixed parts only."""


def needs_key(method: str, template: str, policy: Sequence[Rule] = POLICY) -> bool:
    """Whether the access policy asks a key for the operation `method` on the path `template`
    (`/v1/collections/{name}/ask`) when the server has keys."""
    rule, _ = rule_for(method.upper(), _PARAMETER.sub(_FILLED, template), policy)
    return rule.scope is not None


def describe_access(spec: dict[str, Any], policy: Sequence[Rule] = POLICY) -> dict[str, Any]:
    """`spec` with the bearer scheme, and, on each operation the policy protects, the scheme as
    its security requirement and the 401, 403 and 429 of the access check; a status the route
    declares already (a 429 for a full job queue) gets both descriptions and both bodies."""
    for template, operations in spec["paths"].items():
        for method, operation in operations.items():
            if not needs_key(method, template, policy):
                continue
            operation["security"] = [{BEARER: []}]
            responses = operation.setdefault("responses", {})
            for status, refusal in _ACCESS.items():
                responses[status] = _merged(responses.get(status), refusal)
            operation["responses"] = dict(sorted(responses.items(), key=lambda item: item[0]))
    components = spec.setdefault("components", {})
    components.setdefault("schemas", {}).setdefault("ErrorOut", ErrorOut.model_json_schema())
    components.setdefault("securitySchemes", {})[BEARER] = _SCHEME
    return spec


def install(app: FastAPI) -> None:
    """Publish the access check's answers in the app's /openapi.json (FastAPI's documented way
    to change the description: replacing `app.openapi`)."""
    describe: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe_access(describe())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _merged(declared: dict[str, Any] | None, refusal: dict[str, Any]) -> dict[str, Any]:
    ours = {"schema": {"$ref": _ERROR_OUT}}
    if declared is None:
        return {**refusal, "content": {"application/json": ours}}
    theirs = declared.get("content", {}).get("application/json", {}).get("schema")
    schema = (
        ours["schema"] if theirs in (None, ours["schema"]) else {"anyOf": [theirs, ours["schema"]]}
    )
    own = declared["description"]
    merged = {
        **declared,
        "description": f"{refusal['description']} Or: {own[:1].lower()}{own[1:]}",
        "content": {**declared.get("content", {}), "application/json": {"schema": schema}},
    }
    headers = {**declared.get("headers", {}), **refusal.get("headers", {})}
    if headers:
        merged["headers"] = headers
    return merged
