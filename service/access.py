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

Each refusal on a protected route is written to the audit log before it is sent (time, request
id, client address, method, path, status; the key's name and the collection when known; never the
body, which is not read): every 401 and 403, and the 429s as `_RefusalAudit` says. Why that
cannot make the audit a way to flood the server is told there.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

import anyio
import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from service.audit import AuditError, AuditEvent, AuditLog
from service.collections import DEFAULT_COLLECTION
from service.keys import KeyRecord, KeyStore, allows, bearer_token
from service.keys import Scope as KeyScope
from service.rate_limit import Decision, FailedAuthTracker, RateLimiter
from service.request_context import current_request_id

log = logging.getLogger("chancery")

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
    _rule("GET HEAD", r"^/(?:openapi\.json|docs|docs/oauth2-redirect|redoc|docs-files/.*)$", None),
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
    """The middleware; `keys`, `limiter` and `brake` are shared with the routes that need them.
    With `audit`, refusals on protected routes are recorded in it."""

    def __init__(
        self,
        app: ASGIApp,
        keys: KeyStore,
        limiter: RateLimiter | None,
        brake: FailedAuthTracker,
        policy: Sequence[Rule] = POLICY,
        audit: AuditLog | None = None,
    ) -> None:
        self.app = app
        self._keys = keys
        self._limiter = limiter
        self._brake = brake
        self._policy = policy
        self._refusals = _RefusalAudit(audit) if audit is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Preflights carry no credentials; the CORS policy outside this one answers them.
        method = scope["method"]
        rule, collection = rule_for(method, scope["path"], self._policy)
        client = _client(scope)
        refuse = _Refusal(self._refusals, scope, send, collection)
        if not self._keys.any_keys():
            if rule.scope is not None and (refused := self._over_rate(f"address {client}")):
                await refuse(
                    429, _rate_message(refused), _retry(refused), repeat=f"address {client}"
                )
                return
            await self.app(scope, receive, send)
            return
        if rule.scope is None:
            await self.app(scope, receive, send)
            return
        blocked = self._brake.blocked(client)
        if not blocked.allowed:
            await refuse(
                429, _blocked_message(blocked), _retry(blocked), repeat=f"address {client}"
            )
            return
        token = bearer_token(_header(scope, b"authorization"))
        record = self._keys.authenticate(token) if token else None
        if record is None:
            failed = self._brake.failed(client)
            if not failed.allowed:
                # The failure that starts a block: recorded, like the 401s before it.
                await refuse(
                    429, _blocked_message(failed), _retry(failed), starts=f"address {client}"
                )
                return
            why = "is not a valid key" if token else "is missing"
            await refuse(
                401,
                f"this server needs an API key: the 'Authorization: Bearer <key>' header {why}; "
                "ask the administrator for one (`chancery keys create`)",
                [(b"www-authenticate", b'Bearer realm="chancery"')],
            )
            return
        self._brake.succeeded(client)
        if not allows(record, rule.scope, collection):
            await refuse(403, _forbidden(record, rule.scope, collection), key=record.name)
            return
        refused = self._over_rate(f"key {record.name}")
        if refused is not None:
            await refuse(
                429,
                _rate_message(refused),
                _retry(refused),
                key=record.name,
                repeat=f"key {record.name}",
            )
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


REFUSAL_WRITERS = 4
"""Threads that may write refusals to the audit log at once, apart from the threads that serve
requests (and write their records)."""
REPEATED_429_SECONDS = 60.0
"""While a caller keeps being refused with 429, one of its refusals per this many seconds is
recorded."""
_PATH_CHARS = 256


class _RefusalAudit:
    """Writes refusals to the audit log, at a cost no flood of refused requests can raise.

    A record is an fsynced SQLite commit, so a refused request that is recorded costs more than
    one that is not; three bounds keep that from becoming a way to overload the server or fill
    its disk:

    - 401s are bounded by the brake: an address gets `auth_failures` of them within the window,
      then it is blocked, for longer at each block. Every 401 is recorded, and the 429 that
      starts a block.
    - 403s (and 429s over a key's rate) come from a valid key: its name is in the record, each
      of its allowed requests is recorded as well and costs far more, and an administrator who
      sees a flood revokes it, which turns the flood into braked 401s. Every 403 is recorded.
    - A 429 sheds load: recording each would do, for every refused request, the very work the
      refusal saves. While an address stays blocked, or a key or (without keys) an address
      stays over its rate, one of its 429s per `REPEATED_429_SECONDS` is recorded: the log
      shows that it kept trying, and when, without a row per attempt.

    Records are written on worker threads of their own (`REFUSAL_WRITERS` at most), never the
    event loop and never the pool that runs the routes; concurrent records share commits (the
    log's group commit). A refusal is sent once its record is in, so a client that floods waits
    for the disk, not the other way round. When the log cannot be written, the request is still
    refused, and the failure is logged.
    """

    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit
        self._writers = anyio.CapacityLimiter(REFUSAL_WRITERS)
        self._repeats = RateLimiter(1 / REPEATED_429_SECONDS, 1)

    def wanted(self, *, repeat: str | None, starts: str | None) -> bool:
        """Whether this refusal is recorded: `repeat` names the caller of a 429 that may be one
        of a run, `starts` the caller of one that starts a block (recorded, and counted as the
        run's first)."""
        if starts is not None:
            self._repeats.check(starts)
            return True
        return repeat is None or self._repeats.check(repeat).allowed

    async def record(self, event: AuditEvent) -> None:
        try:
            await anyio.to_thread.run_sync(self._audit.record, event, limiter=self._writers)
        except AuditError as exc:
            log.error("a refused request (%s) went unrecorded: %s", event.status, exc)


class _Refusal:
    """Refuses one request: records it when the audit wants it, then sends the refusal."""

    def __init__(
        self, audit: _RefusalAudit | None, scope: Scope, send: Send, collection: str | None
    ) -> None:
        self._audit = audit
        self._scope = scope
        self._send = send
        self._collection = None if collection == EVERY_COLLECTION else collection

    async def __call__(
        self,
        status: int,
        detail: str,
        headers: Sequence[tuple[bytes, bytes]] = (),
        *,
        key: str | None = None,
        repeat: str | None = None,
        starts: str | None = None,
    ) -> None:
        audit = self._audit
        if audit is not None and audit.wanted(repeat=repeat, starts=starts):
            scope = self._scope
            client = scope.get("client")
            await audit.record(
                AuditEvent(
                    method=scope["method"],
                    route=_shown_path(scope["path"]),
                    status=status,
                    request_id=current_request_id(),
                    key=key,
                    client=str(client[0]) if client else None,
                    collection=self._collection,
                )
            )
        await _deny(self._send, status, detail, headers)


def _shown_path(path: str) -> str:
    """The path as the audit keeps it: short, and printable (percent-encoded), so that no path
    a client makes up can write lines of its own into `chancery audit`'s output."""
    return quote(path[:_PATH_CHARS], safe="/:@!$&'()*+,;=-._~")


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
