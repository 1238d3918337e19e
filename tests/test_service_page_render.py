"""PDFium's side of the page viewer: page images and highlight boxes, checked against PDFium's
own character boxes and text, on small PDFs, the sample strategy and the reference corpus; the
worker pool that runs them; the image cache."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import pytest
from PIL import Image

from eval.gold import load_gold
from ingest.loaders import load_document
from service.citations import locate
from service.page_images import ImageKey, PageCache
from service.page_render import Box, PageRenderError, page_boxes, render_png
from service.pdf_workers import PdfWorkerError, PdfWorkers
from tests import worker_tasks
from tests.conftest import REPO, SAMPLES
from tests.page_checks import (
    ACROSS_LINES,
    ACROSS_LINES_PARTS,
    HEADER,
    HYPHENATED,
    HYPHENATED_PARTS,
    PAGE_TWO_STORED,
    assert_boxes_cover,
    assert_reads_back,
    char_boxes,
    png_size,
    rotated,
    text_under,
    write_report,
)

SAMPLE_PDF = SAMPLES / "northland-national-security-strategy.pdf"
FINANCEBENCH = REPO.parent / "shared" / "financebench-dev" / "pdfs"
FILINGS = ("LOCKHEEDMARTIN_2022_10K.pdf", "GENERALMILLS_2020_10K.pdf")
"""Two filings of moderate length (130 and 127 pages) from different publishers."""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(tmp_path_factory.mktemp("report") / "report.pdf")


def stored_page(path: Path, number: int) -> str:
    return load_document(path).document.pages[number - 1].text


def test_ingest_stores_the_report_page_cleaned(report: Path) -> None:
    # The premise of the tests below: offsets index text PDFium never gives as such.
    assert stored_page(report, 2) == PAGE_TWO_STORED


@pytest.mark.parametrize(
    ("quote", "parts"), [(ACROSS_LINES, ACROSS_LINES_PARTS), (HYPHENATED, HYPHENATED_PARTS)]
)
def test_boxes_lie_over_the_quote_on_each_of_its_lines(
    report: Path, quote: str, parts: tuple[str, ...]
) -> None:
    text = stored_page(report, 2)
    start = text.index(quote)
    found = page_boxes(report, 2, text, start, start + len(quote))
    assert_boxes_cover(found, [char_boxes(report, 2, part) for part in parts])
    assert_reads_back(quote, text_under(report, 2, found))
    header = char_boxes(report, 2, HEADER)
    assert all(box.top > header[0].top + header[0].height for box in found.boxes)
    assert (found.width_pt, found.height_pt) == (595.276, 841.89)


def test_a_quote_that_is_one_line_gets_one_box_of_that_line(report: Path) -> None:
    text = stored_page(report, 2)
    quote = "will be protected by a new agency"
    start = text.index(quote)
    found = page_boxes(report, 2, text, start, start + len(quote))
    assert_boxes_cover(found, [char_boxes(report, 2, quote)])


def test_every_sentence_of_the_sample_strategy_is_boxed_where_pdfium_reads_it() -> None:
    """The sample PDF has running headers and footers, footnote marks, words hyphenated at
    line ends and sentences across page breaks; each sentence page_truth.json puts on a page
    is found in its stored text and boxed there."""
    truth = json.loads((SAMPLES / "page_truth.json").read_text())["files"][SAMPLE_PDF.name]
    document = load_document(SAMPLE_PDF).document
    checked = 0
    for page in truth["pages"]:
        text = document.pages[page["number"] - 1].text
        for sentence in page["sentences"]:
            span = locate(sentence, text)
            if span is None:
                continue  # a sentence split by the page break: each half is a page's own
            found = page_boxes(SAMPLE_PDF, page["number"], text, *span)
            assert found.boxes, sentence
            assert_reads_back(sentence, text_under(SAMPLE_PDF, page["number"], found))
            checked += 1
    assert checked >= 40


def test_the_image_is_a_png_of_the_width_asked_for(report: Path) -> None:
    for width in (200, 777, 1240):
        data = render_png(report, 2, width)
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG" and image.size == png_size(data)
        assert image.size == (width, math.ceil(width * 841.89 / 595.276))


def test_boxes_turn_with_a_rotated_page_and_fall_on_its_ink(report: Path, tmp_path: Path) -> None:
    """On a page with /Rotate 90 the image is landscape, and each box is the box on the upright
    page turned a quarter clockwise, over the quote's ink."""
    turned = rotated(report, tmp_path / "turned.pdf")
    # PDFium reads the lines of the turned page in another order; each line is whole still.
    text, upright_text = stored_page(turned, 2), stored_page(report, 2)
    image = Image.open(io.BytesIO(render_png(turned, 2, 1200))).convert("L")
    assert image.size == (1200, math.ceil(1200 * 595.276 / 841.89))
    for quote in ("four new embassies this year and", "structure will be protected"):
        start, upright_start = text.index(quote), upright_text.index(quote)
        found = page_boxes(turned, 2, text, start, start + len(quote))
        upright = page_boxes(report, 2, upright_text, upright_start, upright_start + len(quote))
        assert (found.width_pt, found.height_pt) == (841.89, 595.276)
        [box], [before] = found.boxes, upright.boxes
        assert box.left == pytest.approx(1 - before.top - before.height, abs=1e-5)
        assert box.top == pytest.approx(before.left, abs=1e-5)
        assert (box.width, box.height) == pytest.approx((before.height, before.width), abs=1e-5)
        assert _ink(image, box) > 0.05


def _ink(image: Image.Image, box: Box) -> float:
    """The share of dark pixels under `box`."""
    width, height = image.size
    crop = image.crop(
        (
            box.left * width,
            box.top * height,
            (box.left + box.width) * width,
            (box.top + box.height) * height,
        )
    )
    counts = crop.histogram()
    return sum(counts[:128]) / max(sum(counts), 1)


def test_pdfium_failures_are_errors_that_say_so(report: Path, tmp_path: Path) -> None:
    with pytest.raises(PageRenderError, match="no page 5"):
        render_png(report, 5, 400)
    damaged = tmp_path / "damaged.pdf"
    damaged.write_bytes(b"%PDF-1.7\nnot really")
    with pytest.raises(PageRenderError, match=r"cannot open damaged\.pdf"):
        page_boxes(damaged, 1, "text", 0, 4)


def test_text_that_pdfium_does_not_read_there_gets_no_boxes(report: Path) -> None:
    found = page_boxes(report, 2, "Words that are printed nowhere in this file.", 0, 20)
    assert found.boxes == ()


# -- the worker pool -----------------------------------------------------------------------------


def test_a_crashed_or_stuck_worker_is_an_error_and_the_next_call_works() -> None:
    workers = PdfWorkers(workers=1)
    try:
        assert workers.call(worker_tasks.double, 21) == 42
        with pytest.raises(PdfWorkerError, match="stopped while reading"):
            workers.call(worker_tasks.crash)
        assert workers.call(worker_tasks.double, 2) == 4
        # The worker is running: the second is all the sleeping task's, however busy the host.
        with pytest.raises(PdfWorkerError, match="more than 1 s"):
            workers.call_within(1, worker_tasks.hang)
        assert workers.call(worker_tasks.double, 3) == 6
    finally:
        workers.close()
    with pytest.raises(PdfWorkerError, match="shutting down"):
        workers.call(worker_tasks.double, 1)


def test_worker_exceptions_arrive_as_they_were_raised(report: Path) -> None:
    workers = PdfWorkers(workers=1)
    try:
        with pytest.raises(PageRenderError, match="no page 9"):
            workers.call(render_png, report, 9, 400)
    finally:
        workers.close()


# -- the cache -----------------------------------------------------------------------------------


def test_the_cache_keeps_whole_pngs_and_refuses_damaged_ones(report: Path, tmp_path: Path) -> None:
    cache = PageCache(tmp_path / "cache")
    key = ImageKey("a" * 64, 2, 400)
    assert cache.get(key) is None
    data = render_png(report, 2, 400)
    cache.put(key, data)
    assert cache.get(key) == data
    [stored] = (tmp_path / "cache").rglob("*.png")
    assert stored.relative_to(tmp_path / "cache").as_posix() == f"r1/{'a' * 64}/2-400.png"
    stored.write_bytes(data[: len(data) // 2])  # what a crash mid-write could leave
    assert cache.get(key) is None
    with pytest.raises(ValueError, match="not a SHA-256"):
        ImageKey("../../etc", 1, 400)


def test_the_cache_removes_its_oldest_entries_past_its_size(tmp_path: Path) -> None:
    cache = PageCache(tmp_path / "cache", max_bytes=10_000)
    png = b"\x89PNG\r\n\x1a\n" + b"x" * 2_000 + b"IEND\xaeB`\x82"
    keys = [ImageKey(f"{n:064x}", 1, 400) for n in range(8)]
    for age, key in enumerate(keys):
        cache.put(key, png)
        path = cache.directory / "r1" / key.sha256 / "1-400.png"
        os.utime(path, (1_000_000 + age, 1_000_000 + age))
    assert cache.prune() == 5
    assert [cache.get(key) is not None for key in keys] == [False] * 5 + [True] * 3


# -- the reference corpus ------------------------------------------------------------------------


@pytest.mark.corpus
def test_every_page_of_the_reference_and_two_filings_renders(reference_pdf: Path) -> None:
    """The reference PDF at the default width; the filings (257 pages) at 600 px, to keep the
    test to seconds: the width changes only the scale PDFium draws at."""
    filings = [FINANCEBENCH / name for name in FILINGS]
    for filing in filings:
        if not filing.is_file():
            pytest.skip(f"{filing} is missing")
    workers = PdfWorkers()
    try:
        for path, width in [(reference_pdf, 1240), *[(filing, 600) for filing in filings]]:
            pages = len(load_document(path).document.pages)
            for number in range(1, pages + 1):
                data = workers.call(render_png, path, number, width)
                assert png_size(data)[0] == width, (path.name, number)
    finally:
        workers.close()


@pytest.mark.corpus
def test_every_gold_quote_is_boxed_on_its_page_of_the_reference(reference_pdf: Path) -> None:
    document = load_document(reference_pdf).document
    evidence = [
        item
        for question in load_gold(REPO / "eval" / "gold" / "kcss.jsonl")
        for item in question.evidence
        if item.doc == reference_pdf.name
    ]
    assert len(evidence) > 100
    for item in evidence:
        text = document.pages[item.page - 1].text
        span = locate(item.quote, text)
        assert span is not None, f"{item.quote!r} is not on page {item.page}"
        found = page_boxes(reference_pdf, item.page, text, *span)
        assert found.boxes, f"no boxes for {item.quote!r} on page {item.page}"
        for box in found.boxes:
            assert box.left >= 0 and box.left + box.width <= 1
            assert box.top >= 0 and box.top + box.height <= 1
            assert box.width > 0 and box.height > 0
        assert_reads_back(item.quote, text_under(reference_pdf, item.page, found))
