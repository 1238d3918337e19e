"""The full template of the route that served a request (`/v1/collections/{name}/ask`), for
metrics labels and audit records.

FastAPI (0.165) keeps an included router's prefix out of `scope["route"].path`, which holds only
the route's own part (`/ask`), so that label alone would lump `/v1/ask` and
`/v1/collections/{name}/ask` together. The prefix is recovered from the request's path: the part
before the route's own, with each segment that is the value of a path parameter the route's own
part does not use put back as `{parameter}`.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.types import Scope


def route_template(scope: Scope) -> str | None:
    """The route's template, prefix included; None when no route served the request."""
    route = scope.get("route")
    own = getattr(route, "path", None)
    pattern = getattr(route, "path_regex", None)
    if not isinstance(own, str) or not isinstance(pattern, re.Pattern):
        return None
    path: str = scope.get("path", "")
    prefix = _prefix(path, pattern)
    if prefix is None:
        return own
    own_parameters = set(getattr(route, "param_convertors", {}) or {})
    return _templated(prefix, scope.get("path_params") or {}, own_parameters) + own


def _prefix(path: str, own: re.Pattern[str]) -> str | None:
    """The part of `path` before the route's own part; None when no split matches."""
    if own.match(path):
        return ""
    for position, character in enumerate(path):
        if character == "/" and position and own.match(path[position:]):
            return path[:position]
    return None


def _templated(prefix: str, parameters: dict[str, Any], own: set[str]) -> str:
    """Each parameter put back once, at its last occurrence: a value may also be a literal
    segment before it (a collection named `v1`), never after it, in this app's prefixes."""
    unplaced = {name: str(value) for name, value in parameters.items() if name not in own}
    segments = prefix.split("/")
    for position in range(len(segments) - 1, -1, -1):
        for name, value in unplaced.items():
            if segments[position] == value:
                segments[position] = f"{{{name}}}"
                del unplaced[name]
                break
    return "/".join(segments)
