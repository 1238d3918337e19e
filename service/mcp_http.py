"""The MCP server over streamable HTTP at `/mcp` of the app, for every collection of its library.

The SDK's transport keeps its sessions in a session manager that must run while the app serves,
and that runs only once: `McpEndpoint.running()`, entered by the app's lifespan, starts a fresh
one each time the app starts (a test client may start one app several times). The endpoint is a
plain route, outside the OpenAPI description, which describes the REST API only.

Like the SDK's own HTTP app on a loopback address, the endpoint answers only requests addressed
to a loopback host name (Host 127.0.0.1, localhost or [::1], any port) and, when they carry an
Origin, sent from a page of one: a web page elsewhere cannot reach it through DNS rebinding.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

PATH = "/mcp"
_LOOPBACK = TransportSecuritySettings(
    enable_dns_rebinding_protection=True,
    allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"],
    allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
)
_BODY_BYTES = 1024 * 1024
"""A tool call is a question and a few names; the app's own body limit is lower still."""


class McpEndpoint:
    """The ASGI endpoint of the MCP server, live while `running()` is."""

    def __init__(self, server: MCPServer[Any]) -> None:
        self._server = server
        self._transport: StreamableHTTPASGIApp | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        # `streamable_http_app` makes the server a new session manager; its Starlette app, which
        # would route to the same transport, is not needed where the endpoint is a route.
        self._server.streamable_http_app(
            streamable_http_path=PATH,
            transport_security=_LOOPBACK,
            max_request_body_size=_BODY_BYTES,
        )
        manager = self._server.session_manager
        async with manager.run():
            self._transport = StreamableHTTPASGIApp(manager)
            try:
                yield
            finally:
                self._transport = None

    def route(self) -> Route:
        """The endpoint at /mcp, as a plain route: the OpenAPI description covers the REST API
        only."""
        return Route(PATH, self, include_in_schema=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = self._transport
        if transport is None:
            # Only between shutdown and the end of the requests still running.
            response = JSONResponse({"detail": "the MCP server is not running"}, status_code=503)
            await response(scope, receive, send)
            return
        await transport(scope, receive, send)
