"""What the streaming routes share: the answer's head read before the status goes out, and the
relay that closes the answer when the client leaves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator

import anyio

from service.engine import AskPart, Retrieved


def prefetch(parts: Iterator[AskPart]) -> list[AskPart]:
    """The parts up to the answer's first, read before the response status is sent: retrieval,
    and the LLM's first words, can still fail as an HTTP status (a 503 that says why)."""
    read: list[AskPart] = []
    for part in parts:
        read.append(part)
        if not isinstance(part, Retrieved):
            break
    return read


async def relay(events: Generator[str, None, None]) -> AsyncIterator[str]:
    """The events, each computed on a worker thread. When the client goes away, Starlette
    cancels the response while it waits here, and `events` is closed at once, which closes the
    LLM's response and stops the model writing for no one. (Starlette's own relay of a plain
    iterator leaves that to the garbage collector, which the cancellation's traceback keeps
    from collecting it until much later.)"""
    try:
        while True:
            event = await anyio.to_thread.run_sync(next, events, None)
            if event is None:
                return
            yield event
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(events.close)
