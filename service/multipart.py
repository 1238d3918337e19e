"""The files of a multipart/form-data body, streamed: each file is an async stream of its bytes.

Starlette's `request.form()` spools every file to a temporary folder before the route sees any of
it, so per-file and count limits could only be checked once the whole body had been read and
written out. Here python-multipart's push parser turns the body into events as it arrives, and
each file part is handed on as a stream of its bytes, which `UploadBatch.add_async` counts
against the limits as they come: reading stops at the first byte over a limit, and a file is
written once, into its staging folder.

Only file parts named `files` are read; any other field is refused, as a JSON body with an
unknown field is. The file name a part carries is passed on as the client sent it (decoded as
UTF-8): `uploads.safe_file_name` makes it safe, never this module.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import Enum, auto
from typing import TYPE_CHECKING

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import (
    DEFAULT_MAX_HEADER_COUNT,
    DEFAULT_MAX_HEADER_SIZE,
    MultipartParser,
    parse_options_header,
)

from service.errors import InvalidRequestError

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FILES_FIELD = "files"
MAX_PART_HEADER_BYTES = DEFAULT_MAX_HEADER_COUNT * (DEFAULT_MAX_HEADER_SIZE + 2)
"""The most header bytes the parser lets a part have (it refuses longer lines and more lines),
so no body, however large, is a header held in memory; a file name of 4 KiB still fits."""
_SHOWN_CHARS = 40


@dataclass(frozen=True)
class FilePart:
    file_name: str
    """The name the client gave the file, as it gave it."""
    chunks: AsyncIterator[bytes]
    """The file's bytes as they arrive; read them before asking for the next part."""


class _Event(Enum):
    PART_BEGIN = auto()
    HEADER_FIELD = auto()
    HEADER_VALUE = auto()
    HEADER_END = auto()
    HEADERS_FINISHED = auto()
    PART_DATA = auto()
    PART_END = auto()
    END = auto()


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a multipart/form-data body, or a 422 saying what the route takes."""
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary", b"")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidRequestError(
            "the body must be multipart/form-data, with each file in a field named "
            f"'{FILES_FIELD}' (curl -F {FILES_FIELD}=@report.pdf)"
        )
    return boundary


class _Events:
    """The parser's events for a body, pulled one at a time; the body is read only as needed."""

    def __init__(self, boundary: bytes, body: AsyncIterator[bytes]) -> None:
        self._body = body
        self._queue: deque[tuple[_Event, bytes]] = deque()
        self._ended = False

        def mark(event: _Event) -> Callable[[], None]:
            return lambda: self._queue.append((event, b""))

        def data(event: _Event) -> Callable[[bytes, int, int], None]:
            # The parser hands a view of its buffer, reused for the next chunk: copy the slice.
            return lambda buffer, start, end: self._queue.append((event, bytes(buffer[start:end])))

        callbacks: MultipartCallbacks = {
            "on_part_begin": mark(_Event.PART_BEGIN),
            "on_header_field": data(_Event.HEADER_FIELD),
            "on_header_value": data(_Event.HEADER_VALUE),
            "on_header_end": mark(_Event.HEADER_END),
            "on_headers_finished": mark(_Event.HEADERS_FINISHED),
            "on_part_data": data(_Event.PART_DATA),
            "on_part_end": mark(_Event.PART_END),
            "on_end": mark(_Event.END),
        }
        self._parser = MultipartParser(boundary, callbacks)

    async def next(self) -> tuple[_Event, bytes] | None:
        """The next event, or None when the body has ended."""
        while not self._queue:
            if self._ended:
                return None
            try:
                chunk = await anext(self._body)
            except StopAsyncIteration:
                self._parser.finalize()
                self._ended = True
                continue
            try:
                self._parser.write(chunk)
            except MultipartParseError as exc:
                raise InvalidRequestError(
                    f"the request body is not valid multipart/form-data: {exc}"
                ) from exc
        return self._queue.popleft()


async def file_parts(
    content_type: str | None, body: AsyncIterator[bytes]
) -> AsyncIterator[FilePart]:
    """Each file of the body, in order; a part that is not a file of `files` is a 422."""
    events = _Events(boundary_of(content_type), body)
    while (event := await events.next()) is not None:
        kind, _ = event
        if kind is _Event.END:
            return
        if kind is not _Event.PART_BEGIN:
            continue  # the parser reports parts in order; nothing else comes between them
        file_name = await _file_name(events)
        part = _Part(events)
        yield FilePart(file_name, part.chunks())
        await part.drain()
    # The body ended between parts: the parser reports the end of a part only with the start of
    # the next or the end of the form, so this is an empty body, which holds no files.


async def _file_name(events: _Events) -> str:
    """Read a part's headers; the file name it carries, once it is known to be a file."""
    headers: dict[bytes, bytes] = {}
    field, value = bytearray(), bytearray()
    while (event := await events.next()) is not None:
        kind, data = event
        if kind is _Event.HEADER_FIELD:
            field += data
        elif kind is _Event.HEADER_VALUE:
            value += data
        elif kind is _Event.HEADER_END:
            headers[bytes(field).lower()] = bytes(value)
            field, value = bytearray(), bytearray()
        elif kind is _Event.HEADERS_FINISHED:
            return _disposition(headers)
    raise InvalidRequestError("the request body ended in the headers of a part; send it again")


def _disposition(headers: dict[bytes, bytes]) -> str:
    raw = headers.get(b"content-disposition")
    if raw is None:
        raise InvalidRequestError("a part of the body has no Content-Disposition header")
    # Header bytes stand for themselves (latin-1 keeps every byte); browsers send names in UTF-8.
    kind, options = parse_options_header(raw.decode("latin-1"))
    name = options.get(b"name", b"").decode("utf-8", "replace")
    if kind != b"form-data" or name != FILES_FIELD:
        shown = repr(name) if len(name) <= _SHOWN_CHARS else repr(name[:_SHOWN_CHARS]) + "…"
        raise InvalidRequestError(
            f"the form field {shown} is not one this route reads; send each file in a field "
            f"named '{FILES_FIELD}'"
        )
    file_name = options.get(b"filename")
    if file_name is None:
        # Without one, a part is a plain form field (a browser or curl always names a file);
        # reading a field's text as a document would accept whatever a form happens to send.
        raise InvalidRequestError(
            f"a part named '{FILES_FIELD}' has no file name, so it is a form field, not a file; "
            "send each file with its name (filename= in its Content-Disposition)"
        )
    return file_name.decode("utf-8", "replace")


class _Part:
    """The bytes of one part, up to its end."""

    def __init__(self, events: _Events) -> None:
        self._events = events
        self._finished = False

    async def chunks(self) -> AsyncIterator[bytes]:
        while not self._finished:
            event = await self._events.next()
            if event is None:
                raise InvalidRequestError(
                    "the request body ended in the middle of a file; send it again"
                )
            kind, data = event
            if kind is _Event.PART_END:
                self._finished = True
            elif kind is _Event.PART_DATA and data:
                yield data

    async def drain(self) -> None:
        """Skip what the reader of the part left unread, to reach the next part."""
        async for _ in self.chunks():
            pass
