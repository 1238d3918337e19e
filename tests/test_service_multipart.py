"""The streaming multipart reader: files come out whole however the body is cut, and a body that
is not a form of files is a 422 that says why."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import InvalidRequestError
from service.multipart import file_parts

BOUNDARY = "xYz-boundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def part(name: bytes, data: bytes, field: bytes = b"files") -> bytes:
    return (
        b"--" + BOUNDARY.encode() + b"\r\n"
        b'Content-Disposition: form-data; name="' + field + b'"; filename="' + name + b'"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    )


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + b"--" + BOUNDARY.encode() + b"--\r\n"


async def _chunks(data: bytes, cuts: Sequence[int]) -> AsyncIterator[bytes]:
    start = 0
    for cut in sorted(cuts):
        yield data[start:cut]
        start = cut
    yield data[start:]


def read(
    data: bytes, cuts: Sequence[int] = (), content_type: str = CONTENT_TYPE
) -> list[tuple[str, bytes]]:
    """Every file of the body, read as a route reads them."""

    async def collect() -> list[tuple[str, bytes]]:
        files = []
        async for found in file_parts(content_type, _chunks(data, cuts)):
            files.append((found.file_name, b"".join([chunk async for chunk in found.chunks])))
        return files

    return asyncio.run(collect())


FILES = [
    ("report.pdf", b"%PDF-1.7\r\n--xYz-boundar not quite\r\n" + bytes(range(256)) * 4),
    ("Стратегија.md", "# Наслов\n\nТекст.\n".encode()),
    ("empty.txt", b""),
]


def test_files_come_out_whole_and_in_order() -> None:
    data = body(*(part(name.encode(), content) for name, content in FILES))
    assert read(data) == FILES


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_cut_of_the_body_gives_the_same_files(data: st.DataObject) -> None:
    raw = body(*(part(name.encode(), content) for name, content in FILES))
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=30))
    assert read(raw, cuts) == FILES


def test_a_file_name_is_passed_on_as_sent() -> None:
    names = [b"../../etc/passwd", b"a\x00b.md", b"C:\\temp\\x.txt"]
    assert [name for name, _ in read(body(*(part(n, b"x") for n in names)))] == [
        "../../etc/passwd",
        "a\x00b.md",
        "x.txt",  # python-multipart keeps the last part of a Windows path (as IE sent them)
    ]


def test_a_body_without_parts_has_no_files() -> None:
    assert read(body()) == []
    assert read(b"") == []


@pytest.mark.parametrize(
    ("data", "content_type", "message"),
    [
        (body(part(b"a.md", b"x")), "application/json", "must be multipart/form-data"),
        (body(part(b"a.md", b"x")), "multipart/form-data", "must be multipart/form-data"),
        (body(part(b"a.md", b"x", field=b"other")), CONTENT_TYPE, "form field 'other'"),
        (
            body(
                b"--" + BOUNDARY.encode() + b'\r\nContent-Disposition: form-data; name="files"'
                b"\r\n\r\ntext\r\n"
            ),
            CONTENT_TYPE,
            "has no file name",
        ),
        (
            body(b"--" + BOUNDARY.encode() + b"\r\nContent-Type: text/plain\r\n\r\nx\r\n"),
            CONTENT_TYPE,
            "no Content-Disposition",
        ),
        (part(b"a.md", b"xyz")[:-3], CONTENT_TYPE, "ended in the middle of a file"),
        (part(b"a.md", b"x"), CONTENT_TYPE, "ended in the middle of a file"),  # no closing line
        (part(b"a.md", b"x")[:40], CONTENT_TYPE, "ended in the headers of a part"),
        (part(b"a" * 5000, b"x"), CONTENT_TYPE, "Maximum header size exceeded"),
        (b"garbage without a boundary\r\n", CONTENT_TYPE, "not valid multipart/form-data"),
    ],
)
def test_a_body_that_is_not_a_form_of_files_is_a_422(
    data: bytes, content_type: str, message: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        read(data, content_type=content_type)
    assert caught.value.status == 422
    assert message in str(caught.value)
