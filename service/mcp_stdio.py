"""`chancery mcp`: the MCP server over stdin and stdout for one collection, as a desktop
assistant starts it.

The model and the index start loading on a thread when the server starts, so the handshake
answers at once (assistants give a server a short while to answer it) and the first tool call
waits only for what is left of the load.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer

from index.embedder import SentenceTransformerEmbedder
from service.build import build_answerers, build_embedder
from service.collections import CollectionNotFoundError, parse_name
from service.engine import Engine
from service.library import CollectionInfo, collection_info
from service.mcp_server import build_mcp_server
from service.settings import Settings
from service.uploads import Originals

log = logging.getLogger("chancery")


class OneCollection:
    """The one collection `chancery mcp` serves, as the tools read a library."""

    def __init__(self, engine: Engine, originals: Originals | None) -> None:
        self._engine = engine
        self._originals = originals

    def engine(self, name: str) -> Engine:
        if parse_name(name) != self._engine.collection:
            raise CollectionNotFoundError(
                f"no collection '{name}' here: this server serves '{self._engine.collection}' "
                f"only; start another with `chancery mcp --collection {name}`, or use the HTTP "
                "server's /mcp, which serves every collection"
            )
        return self._engine

    def originals(self, name: str) -> Originals | None:
        self.engine(name)
        return self._originals

    def collections(self) -> list[CollectionInfo]:
        return [collection_info(self._engine.collection, self._engine.root)]


def serve_stdio(
    settings: Settings, root: Path, collection: str, originals: Originals | None
) -> None:
    """Serve the index folder `root` as the collection `collection` until stdin closes."""
    embedder = build_embedder(settings)
    engine = Engine(root, embedder, build_answerers(settings), collection=collection)
    holdings = OneCollection(engine, originals)
    server = build_mcp_server(lambda: holdings, collection, lifespan=_warming(embedder, engine))
    server.run("stdio")


def _warming(
    embedder: SentenceTransformerEmbedder, engine: Engine
) -> Callable[[MCPServer[Any]], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_: MCPServer[Any]) -> AsyncIterator[None]:
        # Runs once the transport holds stdout, so nothing the load prints reaches the wire.
        threading.Thread(
            target=_warm, args=(embedder, engine), name="chancery-warm", daemon=True
        ).start()
        yield

    return lifespan


def _warm(embedder: SentenceTransformerEmbedder, engine: Engine) -> None:
    try:
        embedder.load()
        engine.snapshot()
    except Exception as exc:
        # The tool calls that need them meet the same error and report it to the assistant;
        # here it is only logged.
        log.warning("chancery mcp: %s", exc)
