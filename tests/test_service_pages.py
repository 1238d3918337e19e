"""The page viewer's routes over HTTP: page images, highlight boxes, and what the document list
says about each file, on a data root (originals kept) and on a bare index folder (none kept)."""

from __future__ import annotations

import io
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from index.update import update_index
from ingest.chunking import chunk_document
from ingest.loaders import load_document
from service.answerers import offer
from service.app import create_app, upload_limits
from service.build import build_app
from service.data_root import DataRoot
from service.engine import Engine
from service.extractive import extractive
from service.ingester import Chunking, Ingester
from service.library import Library
from service.page_render import Box, PageBoxes
from service.settings import Settings
from tests.conftest import SAMPLES, WhitespaceTokenizer
from tests.fakes import CHUNKING, CHUNKING_CONFIG, FakeEmbedder
from tests.page_checks import (
    ACROSS_LINES,
    ACROSS_LINES_PARTS,
    HYPHENATED,
    HYPHENATED_PARTS,
    PAGE_TWO_STORED,
    assert_boxes_cover,
    char_boxes,
    png_size,
    write_report,
)

PATIENCE = 60.0
"""Seconds a test waits for the upload job; only a failing test waits that long."""
NOTE = SAMPLES / "northland-energy-brief.md"
PAGE = "/v1/documents/report.pdf/pages/2"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("files")
    return {"report.pdf": write_report(folder / "report.pdf"), NOTE.name: NOTE}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pages") / "data"


@pytest.fixture(scope="module")
def client(data_root: Path, files: dict[str, Path]) -> Iterator[TestClient]:
    """A data root whose `default` holds the report and the Markdown note, uploaded."""
    settings = Settings(data_dir=data_root)
    embedder = FakeEmbedder()
    ingester = Ingester(Chunking(WhitespaceTokenizer(), CHUNKING_CONFIG), embedder, 1 << 24)

    def start() -> Library:
        library = DataRoot(
            settings.data_dir,
            lambda c: Engine(
                c.index_dir, embedder, offer({"extractive": extractive()}), collection=c.name
            ),
            ingester,
            upload_limits(settings),
            max_queued_jobs=4,
        )
        library.start()
        return library

    with TestClient(create_app(settings, start), raise_server_exceptions=False) as http:
        parts = [("files", (name, path.read_bytes())) for name, path in files.items()]
        job = http.post("/v1/collections/default/documents", files=parts).json()
        deadline = time.monotonic() + PATIENCE
        while http.get(job["url"]).json()["state"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline, "the upload job did not finish"
            time.sleep(0.05)
        assert http.get(job["url"]).json()["state"] == "succeeded"
        yield http


def highlights(client: TestClient, **params: Any) -> PageBoxes:
    """The highlights of page 2 of the report, as the renderer's own type."""
    response = client.get(f"{PAGE}/highlights", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    boxes = tuple(Box(**box) for box in body["boxes"])
    return PageBoxes(body["width_pt"], body["height_pt"], boxes)


# -- highlights ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quote", "parts"), [(ACROSS_LINES, ACROSS_LINES_PARTS), (HYPHENATED, HYPHENATED_PARTS)]
)
def test_highlights_by_offsets_lie_over_the_quote(
    client: TestClient, files: dict[str, Path], quote: str, parts: tuple[str, ...]
) -> None:
    stored = client.get(PAGE).json()["text"]
    assert stored == PAGE_TWO_STORED  # header, page number and hyphen gone
    start = stored.index(quote)
    body = client.get(f"{PAGE}/highlights", params={"start": start, "end": start + len(quote)})
    assert body.status_code == 200, body.text
    assert set(body.json()) == {
        "doc_id",
        "page",
        "start",
        "end",
        "width_pt",
        "height_pt",
        "boxes",
    }
    assert (body.json()["doc_id"], body.json()["page"]) == ("report.pdf", 2)
    assert (body.json()["start"], body.json()["end"]) == (start, start + len(quote))
    found = highlights(client, start=start, end=start + len(quote))
    assert_boxes_cover(found, [char_boxes(files["report.pdf"], 2, part) for part in parts])


def test_highlights_by_quote_find_it_even_with_other_whitespace(client: TestClient) -> None:
    exact = client.get(f"{PAGE}/highlights", params={"quote": HYPHENATED}).json()
    loose = client.get(
        f"{PAGE}/highlights", params={"quote": HYPHENATED.replace(" ", "\n  ")}
    ).json()
    assert exact == loose
    assert exact["start"] == PAGE_TWO_STORED.index(HYPHENATED)
    assert len(exact["boxes"]) == 2


def test_the_routes_answer_under_a_collection_name_too(client: TestClient) -> None:
    named = "/v1/collections/default/documents/report.pdf/pages/2"
    assert client.get(f"{named}/highlights", params={"quote": ACROSS_LINES}).json() == (
        client.get(f"{PAGE}/highlights", params={"quote": ACROSS_LINES}).json()
    )
    image = client.get(f"{named}/image", params={"width": 300})
    assert image.status_code == 200 and png_size(image.content)[0] == 300
    assert (
        client.get("/v1/collections/nowhere/documents/report.pdf/pages/2/image").status_code == 404
    )


def test_a_text_document_gets_offsets_and_no_boxes(client: TestClient) -> None:
    path = f"/v1/documents/{NOTE.name}/pages/1"
    text = client.get(path).json()["text"]
    quote = text.split("\n")[1][:40]
    body = client.get(f"{path}/highlights", params={"quote": quote}).json()
    assert body["boxes"] == [] and body["width_pt"] is None and body["height_pt"] is None
    assert text[body["start"] : body["end"]] == quote


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({}, "give the quote by start and end"),
        ({"start": 3}, "give the quote by start and end"),
        ({"start": 3, "end": 9, "quote": "the"}, "not both"),
        ({"start": 9, "end": 9}, "start must be less than end"),
        ({"start": 0, "end": 10_000}, f"its text has {len(PAGE_TWO_STORED)} characters"),
        ({"start": -1, "end": 4}, "greater than or equal to 0"),
        ({"quote": "words printed nowhere"}, "the quote is not on page 2 of 'report.pdf'"),
        ({"quote": ""}, "at least 1 character"),
    ],
)
def test_a_quote_that_is_not_on_the_page_is_refused_with_a_reason(
    client: TestClient, params: dict[str, Any], says: str
) -> None:
    response = client.get(f"{PAGE}/highlights", params=params)
    assert response.status_code == 422
    assert says in response.json()["detail"]


# -- images --------------------------------------------------------------------------------------


def test_the_image_is_a_png_of_the_width_asked_for_or_the_default(client: TestClient) -> None:
    for params, width in (({"width": 640}, 640), ({}, 1240)):
        response = client.get(f"{PAGE}/image", params=params)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(response.content))
        assert image.format == "PNG"
        assert image.size == (width, math.ceil(width * 841.89 / 595.276))


def test_a_cached_image_is_the_same_bytes_and_revalidates_with_its_etag(
    client: TestClient, data_root: Path
) -> None:
    first = client.get(f"{PAGE}/image", params={"width": 500})
    again = client.get(f"{PAGE}/image", params={"width": 500})
    assert first.status_code == again.status_code == 200
    assert first.content == again.content
    etag = first.headers["etag"]
    assert again.headers["etag"] == etag and "no-cache" in first.headers["cache-control"]
    cached = list((data_root / "cache" / "pages").rglob("2-500.png"))
    assert [path.read_bytes() for path in cached] == [first.content]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        revalidated = client.get(
            f"{PAGE}/image", params={"width": 500}, headers={"If-None-Match": header}
        )
        assert revalidated.status_code == 304 and revalidated.content == b""
        assert revalidated.headers["etag"] == etag
    other = client.get(f"{PAGE}/image", params={"width": 501}, headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag


def test_a_damaged_cache_entry_is_drawn_again(client: TestClient, data_root: Path) -> None:
    first = client.get(f"{PAGE}/image", params={"width": 420}).content
    [cached] = (data_root / "cache" / "pages").rglob("2-420.png")
    cached.write_bytes(first[:100])
    assert client.get(f"{PAGE}/image", params={"width": 420}).content == first


@pytest.mark.parametrize(
    ("path", "params", "status", "says"),
    [
        (PAGE, {"width": 199}, 422, "greater than or equal to 200"),
        (PAGE, {"width": 2401}, 422, "less than or equal to 2400"),
        (PAGE, {"width": "wide"}, 422, "valid integer"),
        ("/v1/documents/report.pdf/pages/5", {}, 404, "has pages 1 to 4; there is no page 5"),
        ("/v1/documents/report.pdf/pages/0", {}, 404, "there is no page 0"),
        ("/v1/documents/missing.pdf/pages/1", {}, 404, "no document 'missing.pdf'"),
        (f"/v1/documents/{NOTE.name}/pages/1", {}, 404, "is not a PDF"),
    ],
)
def test_what_has_no_image_says_why(
    client: TestClient, path: str, params: dict[str, Any], status: int, says: str
) -> None:
    response = client.get(f"{path}/image", params=params)
    assert response.status_code == status
    assert says in response.json()["detail"]


def test_a_pdf_whose_original_is_gone_or_damaged_is_a_404_not_a_500(
    client: TestClient, data_root: Path, files: dict[str, Path]
) -> None:
    originals = data_root / "collections" / "default" / "originals"
    [kept] = originals.glob("*/report.pdf")
    try:
        kept.write_bytes(b"%PDF-1.7\nnot a PDF any more")
        damaged = client.get(f"{PAGE}/image", params={"width": 333})
        assert damaged.status_code == 404 and "cannot be drawn" in damaged.json()["detail"]
        boxes = client.get(f"{PAGE}/highlights", params={"quote": ACROSS_LINES})
        assert boxes.status_code == 404 and "cannot be read" in boxes.json()["detail"]
        kept.unlink()
        gone = client.get(f"{PAGE}/image", params={"width": 333})
        assert gone.status_code == 404
        assert "is not kept in this collection" in gone.json()["detail"]
        text_only = client.get(f"{PAGE}/highlights", params={"quote": ACROSS_LINES}).json()
        assert text_only["boxes"] == [] and text_only["width_pt"] is None
        assert not next(
            d for d in client.get("/v1/documents").json()["documents"] if d["format"] == "pdf"
        )["has_page_images"]
    finally:
        kept.write_bytes(files["report.pdf"].read_bytes())


# -- the document list ---------------------------------------------------------------------------


def test_the_document_list_tells_format_size_time_and_page_images(
    client: TestClient, files: dict[str, Path]
) -> None:
    before = datetime.now(UTC)
    listed = {d["doc_id"]: d for d in client.get("/v1/documents").json()["documents"]}
    report, note = listed["report.pdf"], listed[NOTE.name]
    assert (report["format"], note["format"]) == ("pdf", "md")
    assert report["bytes"] == files["report.pdf"].stat().st_size
    assert note["bytes"] == NOTE.stat().st_size
    assert (report["has_page_images"], note["has_page_images"]) == (True, False)
    for document in (report, note):
        kept = datetime.fromisoformat(document["ingested_at"])
        assert kept.tzinfo is not None and abs((before - kept).total_seconds()) < 3600
        assert {"doc_id", "file_name", "title", "sha256", "pages"} <= set(document)
    detail = client.get("/v1/documents/report.pdf").json()
    assert {k: detail[k] for k in report} == report


# -- a bare index folder -------------------------------------------------------------------------


def test_a_bare_index_folder_has_no_page_images(tmp_path: Path, files: dict[str, Path]) -> None:
    embedder = FakeEmbedder()
    documents = []
    for path in files.values():
        document = load_document(path).document
        documents.append(
            (document, chunk_document(document, WhitespaceTokenizer(), CHUNKING_CONFIG))
        )
    update_index(tmp_path / "index", documents, embedder, CHUNKING)
    settings = Settings(index_dir=tmp_path / "index", data_dir=tmp_path / "data")
    with TestClient(build_app(settings, embedder=embedder)) as http:
        image = http.get(f"{PAGE}/image")
        assert image.status_code == 404
        assert "the original file is not kept for this index" in image.json()["detail"]
        found = http.get(f"{PAGE}/highlights", params={"quote": ACROSS_LINES}).json()
        assert found["boxes"] == [] and found["start"] == PAGE_TWO_STORED.index(ACROSS_LINES)
        for document in http.get("/v1/documents").json()["documents"]:
            assert document["bytes"] is None and document["ingested_at"] is None
            assert document["has_page_images"] is False
        assert {d["format"] for d in http.get("/v1/documents").json()["documents"]} == {
            "pdf",
            "md",
        }
    assert not (tmp_path / "data").exists()
