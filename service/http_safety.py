"""What a browser needs from a server to stay safe: trusted Host names, a CORS policy, and
headers that forbid sniffing, framing and leaking the URL.

All three are pure-ASGI middlewares, so streamed answers pass through untouched.

`TrustedHosts` answers 400 to a request whose Host header is not one of the server's names.
Without it, a page on any web site can point its own host name at 127.0.0.1 (DNS rebinding) and
read the service as if it were same-origin. The default names are the loopback ones, with any
port; a deployment adds its own. Starlette's TrustedHostMiddleware is not used: it answers in
plain text and cuts `[::1]:8000` at the first colon, so IPv6 loopback could never be allowed.

`CorsPolicy` is off by default: a cross-origin preflight gets a 403 saying how to open it,
rather than the 405 a route without OPTIONS gives, which reads like a bug. With an allow-list it
is Starlette's CORSMiddleware, which gets the details right (`Vary: Origin`, preflight checks of
method and headers); credentials stay off, since keys travel in the Authorization header, which
needs none.

`SecurityHeaders` adds nosniff, no framing and no referrer to every response, each only where
the response has not set it: the web page sends its own Content-Security-Policy, which is left
alone.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
ANY_HOST = "*"
CORS_METHODS = ("GET", "POST", "DELETE")
CORS_HEADERS = ("Authorization", "Content-Type", "X-Request-ID", "Last-Event-ID")
CORS_EXPOSED = ("X-Request-ID", "Retry-After", "Location", "ETag")
CORS_MAX_AGE = 600
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
FRAME_POLICY = "frame-ancestors 'none'"
_SHOWN = 100
_HOST = re.compile(r"^(?P<name>\[[0-9a-f:.]+\]|[a-z0-9._-]+?)\.?(?::(?P<port>[0-9]{1,5}))?$")
_ORIGIN = re.compile(
    r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$"
)


def host_name(header: str | None) -> str | None:
    """The name in a Host header, lower case, port and final dot removed; None if malformed."""
    if header is None:
        return None
    match = _HOST.fullmatch(header.strip().lower())
    return match["name"] if match else None


def host_pattern(raw: str) -> str:
    """A trusted-host setting as it is matched: lower case, IPv6 in brackets, no port."""
    pattern = raw.strip().lower().rstrip(".")
    if pattern == ANY_HOST:
        return pattern
    if ":" in pattern and not pattern.startswith("["):
        pattern = f"[{pattern}]"  # `::1` means `[::1]`, the way a Host header carries it
    name = host_name(pattern.removeprefix("*."))
    if name is None or ":" in pattern.rpartition("]")[2] or not _valid_ipv6(name):
        raise ValueError(
            f"{raw!r} is not a host name: give names such as 'chancery.example.org', "
            "'*.example.org', '10.0.0.5' or '[::1]', without a port"
        )
    return pattern


def _valid_ipv6(name: str) -> bool:
    if not name.startswith("["):
        return True
    try:
        ipaddress.IPv6Address(name[1:-1])
    except ValueError:
        return False
    return True


def host_allowed(name: str, patterns: Sequence[str]) -> bool:
    for pattern in patterns:
        if pattern in (ANY_HOST, name):
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False


class TrustedHosts:
    """Answer 400 to requests whose Host header names none of `hosts` (any port)."""

    def __init__(self, app: ASGIApp, hosts: Sequence[str] = LOOPBACK_HOSTS) -> None:
        self.app = app
        self.hosts = tuple(host_pattern(host) for host in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        sent = Headers(scope=scope).get("host")
        name = host_name(sent)
        if name is not None and host_allowed(name, self.hosts):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        shown = "no Host header" if sent is None else f"the Host header {sent[:_SHOWN]!r}"
        detail = (
            f"{shown} does not name this server; if it is one of its names, add it to "
            "CHANCERY_TRUSTED_HOSTS"
        )
        await JSONResponse({"detail": detail}, status_code=400)(scope, receive, send)


class CorsPolicy:
    """Cross-origin requests from `origins` only (`scheme://host[:port]`, or `*`); none when
    empty, and then a preflight gets 403 with what to set."""

    def __init__(self, app: ASGIApp, origins: Sequence[str] = ()) -> None:
        self.origins = tuple(cors_origin(origin) for origin in origins)
        self.app: ASGIApp = app
        if self.origins:
            self.app = CORSMiddleware(
                app,
                allow_origins=self.origins,
                allow_methods=CORS_METHODS,
                allow_headers=CORS_HEADERS,
                expose_headers=CORS_EXPOSED,
                allow_credentials=False,
                max_age=CORS_MAX_AGE,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.origins or scope["type"] != "http" or not _preflight(scope):
            await self.app(scope, receive, send)
            return
        detail = (
            "cross-origin requests are not allowed by this server; set CHANCERY_CORS_ORIGINS "
            "to the origins that may call it"
        )
        await JSONResponse({"detail": detail}, status_code=403)(scope, receive, send)


def cors_origin(raw: str) -> str:
    origin = raw.strip().rstrip("/")
    if origin != "*" and not _ORIGIN.fullmatch(origin):
        raise ValueError(
            f"{raw!r} is not an origin: give scheme, host and port only, such as "
            "'https://portal.example.org' or 'http://localhost:3000'"
        )
    return origin


def _preflight(scope: Scope) -> bool:
    headers = Headers(scope=scope)
    return (
        scope["method"] == "OPTIONS"
        and "origin" in headers
        and "access-control-request-method" in headers
    )


class SecurityHeaders:
    """Add SECURITY_HEADERS, and `frame-ancestors 'none'` as the Content-Security-Policy of a
    response that has none, to every HTTP response; a header the response set is kept."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", FRAME_POLICY)
            await send(message)

        await self.app(scope, receive, send_with_headers)
