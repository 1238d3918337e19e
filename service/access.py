"""Who may call what: API keys, per-collection access and rate limits, decided in one place.

One ASGI middleware reads the request's method and path against a policy table, so that every
route, the MCP transport mounted at /mcp included, is covered without each route remembering to
ask. With no keys in the data root, nothing is asked (the server then binds to loopback only,
`service.bind_check`) and each client address is rate-limited. Once a key exists, every route but
the health checks and the web page's own files needs `Authorization: Bearer <key>`: 401 without a
valid one (repeated failures from one address are slowed down, 429), 403 when the key's scope or
collections do not allow the request, 429 over the key's rate. The key, once known, is on
`request.state.key` and in `current_key()`, for routes that pick the collection from the body
(chat models, MCP tools) and for the audit log.
"""

from __future__ import annotations

import contextvars
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from service.collections import DEFAULT_COLLECTION
from service.keys import KeyRecord, KeyStore, allows, bearer_token
from service.keys import Scope as KeyScope
from service.rate_limit import Decision, FailedAuthTracker, RateLimiter

_KEY: contextvars.ContextVar[KeyRecord | None] = contextvars.ContextVar(
    "chancery_key", default=None
)


def current_key() -> KeyRecord | None:
    """The key of the request being served; None when the server has no keys."""
    return _KEY.get()


@dataclass(frozen=True)
class Rule:
    methods: frozenset[str] | None
    """None: any method."""
    path: re.Pattern[str]
    """A `collection` group names the collection the request touches."""
    scope: KeyScope | None
    """None: public."""
    collection: str | None = None
    """The collection a path without a `collection` group touches; None: none, or one the
    route checks itself (a chat model's, an MCP tool's)."""


def _rule(
    methods: str | None, path: str, scope: KeyScope | None, collection: str | None = None
) -> Rule:
    chosen = frozenset(methods.split()) if methods else None
    return Rule(chosen, re.compile(path), scope, collection)


READ, WRITE, ADMIN = KeyScope.READ, KeyScope.WRITE, KeyScope.ADMIN
_NAME = r"(?P<collection>[^/]+)"
EVERY_COLLECTION = "*"
"""No collection is named so (names are checked): only a key for every collection sees it."""
POLICY: tuple[Rule, ...] = (
    _rule(None, r"^/(?:healthz|readyz)$", None),
    # The page's shell and files are public: it asks for a key, and holds no document.
    _rule("GET HEAD", r"^/(?:|library|documents/.*|static/.*)$", None),
    _rule("GET HEAD", r"^/(?:openapi\.json|docs|docs/oauth2-redirect|redoc)$", None),
    _rule("POST DELETE", rf"^/v1/collections/{_NAME}/documents(?:/[^/]+)?$", WRITE),
    _rule("DELETE", rf"^/v1/collections/{_NAME}$", ADMIN),
    _rule(None, rf"^/v1/collections/{_NAME}/", READ),
    _rule("POST", r"^/v1/collections$", ADMIN),
    _rule("GET HEAD", r"^/v1/collections$", READ),
    _rule(None, r"^/v1/jobs/", WRITE),
    _rule(None, r"^/v1/(?:ask|search|documents(?:/.*)?)$", READ, DEFAULT_COLLECTION),
    _rule(None, r"^/v1/index$", READ, DEFAULT_COLLECTION),
    _rule(None, r"^/metrics$", ADMIN),
    _rule(None, r"^/v1/keys(?:/.*)?$", ADMIN),
    # MCP tools name their collection inside the session, beyond this middleware's sight: the
    # transport is for keys that may use every collection.
    _rule(None, r"^/mcp(?:/.*)?$", READ, EVERY_COLLECTION),
)
DEFAULT_RULE = Rule(None, re.compile(""), READ)
"""Anything else (chat, models, /mcp, a path no route serves) needs a readable key."""


def rule_for(method: str, path: str, policy: Sequence[Rule] = POLICY) -> tuple[Rule, str | None]:
    """The first rule that matches, and the collection the request touches."""
    for rule in policy:
        if rule.methods is not None and method not in rule.methods:
            continue
        found = rule.path.match(path)
        if found:
            named = found.groupdict().get("collection")
            return rule, named if named is not None else rule.collection
    return DEFAULT_RULE, None


class Access:
    """The middleware; `keys`, `limiter` and `brake` are shared with the routes that need them."""

    def __init__(
        self,
        app: ASGIApp,
        keys: KeyStore,
        limiter: RateLimiter | None,
        brake: FailedAuthTracker,
        policy: Sequence[Rule] = POLICY,
    ) -> None:
        self.app = app
        self._keys = keys
        self._limiter = limiter
        self._brake = brake
        self._policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Preflights carry no credentials; the CORS policy outside this one answers them.
        method = scope["method"]
        rule, collection = rule_for(method, scope["path"], self._policy)
        client = _client(scope)
        if not self._keys.any_keys():
            if rule.scope is not None and (refused := self._over_rate(f"address {client}")):
                await _deny(send, 429, _rate_message(refused), _retry(refused))
                return
            await self.app(scope, receive, send)
            return
        if rule.scope is None:
            await self.app(scope, receive, send)
            return
        blocked = self._brake.blocked(client)
        if not blocked.allowed:
            await _deny(send, 429, _blocked_message(blocked), _retry(blocked))
            return
        token = bearer_token(_header(scope, b"authorization"))
        record = self._keys.authenticate(token) if token else None
        if record is None:
            failed = self._brake.failed(client)
            if not failed.allowed:
                await _deny(send, 429, _blocked_message(failed), _retry(failed))
                return
            why = "is not a valid key" if token else "is missing"
            await _deny(
                send,
                401,
                f"this server needs an API key: the 'Authorization: Bearer <key>' header {why}; "
                "ask the administrator for one (`chancery keys create`)",
                [(b"www-authenticate", b'Bearer realm="chancery"')],
            )
            return
        self._brake.succeeded(client)
        if not allows(record, rule.scope, collection):
            await _deny(send, 403, _forbidden(record, rule.scope, collection))
            return
        refused = self._over_rate(f"key {record.name}")
        if refused is not None:
            await _deny(send, 429, _rate_message(refused), _retry(refused))
            return
        scope.setdefault("state", {})["key"] = record
        token_ = _KEY.set(record)
        try:
            await self.app(scope, receive, send)
        finally:
            _KEY.reset(token_)

    def _over_rate(self, caller: str) -> Decision | None:
        if self._limiter is None:
            return None
        decision = self._limiter.check(caller)
        return None if decision.allowed else decision


def _forbidden(record: KeyRecord, scope: KeyScope, collection: str | None) -> str:
    if collection == EVERY_COLLECTION and not record.sees(collection):
        return f"the key '{record.name}' is not for every collection, which this route needs"
    if collection is not None and not record.sees(collection):
        return f"the key '{record.name}' may not use the collection '{collection}'"
    return (
        f"the key '{record.name}' has the scope '{record.scope}'; this request needs "
        f"'{scope}' ({_needs(scope)})"
    )


def _needs(scope: KeyScope) -> str:
    return {
        KeyScope.READ: "asking, searching and reading documents",
        KeyScope.WRITE: "uploading and deleting documents",
        KeyScope.ADMIN: "managing collections and keys, metrics, index details",
    }[scope]


def _rate_message(decision: Decision) -> str:
    return (
        f"too many requests; try again in {decision.retry_after_header} s "
        "(the limit is set by CHANCERY_RATE_LIMIT_RPS and CHANCERY_RATE_LIMIT_BURST)"
    )


def _blocked_message(decision: Decision) -> str:
    return (
        "too many failed attempts to authenticate from this address; try again in "
        f"{decision.retry_after_header} s"
    )


def _retry(decision: Decision) -> list[tuple[bytes, bytes]]:
    return [(b"retry-after", decision.retry_after_header.encode())]


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _deny(
    send: Send, status: int, detail: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
