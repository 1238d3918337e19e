"""Page images for the page viewer: a cited page rendered cold and from the cache, and its size.

Every page of the reference PDF at A4 and 150 dpi (1240 px), as the service renders it: in the
PDFium worker process (already started; its start is timed apart), quantised to a 256-colour PNG,
written to the cache. "Cold" is a page not in the cache, "cached" one read back from it; both
are timed at the service's `PageImages` (what the route calls) and through the HTTP route in
process (the app with its routing and index lookup, no network). Targets (issue 11): p50 at
most 150 ms cold and 10 ms cached. Highlight boxes are timed over the gold set's quotes, and the
encodings that were weighed against the palette PNG are timed on a few pages, to show the choice.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import benchlib
import pypdfium2 as pdfium
from PIL import Image

from ingest.loaders import load_document
from service.citations import locate
from service.page_images import A4_WIDTH_150_DPI, ImageKey, PageCache, PageImages
from service.page_render import page_boxes, render_png
from service.pdf_workers import PdfWorkers

TARGET_COLD_MS = 150.0
TARGET_CACHED_MS = 10.0
ENCODING_PAGES = (1, 4, 11, 21)
"""A cover, a text page, a page with a figure, a page with footnotes."""


def percentiles(times_s: list[float]) -> dict[str, float]:
    ms = [t * 1000 for t in times_s]
    return {
        "runs": len(ms),
        "p50_ms": benchlib.percentile(ms, 50),
        "p95_ms": benchlib.percentile(ms, 95),
        "max_ms": max(ms),
    }


def timed_s(function: Callable[[], Any]) -> float:
    """Seconds `function` took."""
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def service_level(pdf: Path, sha256: str, pages: int, rounds: int, reads: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        images = PageImages(PageCache(Path(tmp) / "cache"), PdfWorkers())
        try:
            start_s = timed_s(lambda: images.workers.call(render_png, pdf, 1, 200))
            cold: list[float] = []
            sizes: list[int] = []
            for _ in range(rounds):
                shutil.rmtree(Path(tmp) / "cache", ignore_errors=True)
                for number in range(1, pages + 1):
                    key = ImageKey(sha256, number, A4_WIDTH_150_DPI)
                    started = time.perf_counter()
                    data = images.image(pdf, key)
                    cold.append(time.perf_counter() - started)
                    sizes.append(len(data))
            cached = [
                timed_s(lambda n=n: images.image(pdf, ImageKey(sha256, n, A4_WIDTH_150_DPI)))
                for _ in range(reads)
                for n in range(1, pages + 1)
            ]
        finally:
            images.close()
    return {
        "worker_start_ms": start_s * 1000,
        "cold": percentiles(cold),
        "cached": percentiles(cached),
        "bytes": {
            "mean": statistics.mean(sizes[:pages]),
            "median": statistics.median(sizes[:pages]),
            "max": max(sizes[:pages]),
            "total": sum(sizes[:pages]),
        },
    }


def http_level(pdf: Path, pages: int, reads: int) -> dict[str, Any]:
    """The route in process, over a data root whose `default` holds the PDF as `chancery ingest
    --collection default` leaves it: each page cold, cached, and revalidated (304)."""
    from fastapi.testclient import TestClient

    from service.build import build_app, build_embedder, build_ingester
    from service.collections import CollectionRegistry
    from service.originals import keep_ingested
    from service.settings import Settings
    from service.uploads import Originals

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data")
        embedder = build_embedder(settings)
        ingester = build_ingester(settings, embedder)
        collection = CollectionRegistry(settings.data_dir, lambda _: None).ensure_default()
        parsed = ingester.parse([pdf])
        ingester.update(collection.index_dir, parsed.documents)
        keep_ingested(Originals(collection.originals_dir), [(pdf, parsed.documents[0][0])])
        with TestClient(build_app(settings, embedder=embedder, data_root=True)) as http:
            base = f"/v1/documents/{pdf.name}/pages"
            http.get(f"{base}/1/image", params={"width": 200})  # starts the worker
            cold = [timed_s(lambda n=n: http.get(f"{base}/{n}/image")) for n in range(1, pages + 1)]
            cached = [
                timed_s(lambda n=n: http.get(f"{base}/{n}/image"))
                for _ in range(reads)
                for n in range(1, pages + 1)
            ]
            etag = http.get(f"{base}/1/image").headers["etag"]
            revalidated = [
                timed_s(lambda: http.get(f"{base}/1/image", headers={"If-None-Match": etag}))
                for _ in range(reads * 10)
            ]
    return {
        "cold": percentiles(cold),
        "cached": percentiles(cached),
        "not_modified": percentiles(revalidated),
    }


def highlight_times(pdf: Path) -> dict[str, Any]:
    document = load_document(pdf).document
    times = []
    for question in benchlib.answerable_gold():
        for item in question.evidence:
            if item.doc != pdf.name:
                continue
            text = document.pages[item.page - 1].text
            span = locate(item.quote, text)
            if span is not None:
                started = time.perf_counter()
                page_boxes(pdf, item.page, text, *span)
                times.append(time.perf_counter() - started)
    return percentiles(times)


def encodings(pdf: Path) -> list[list[benchlib.Cell]]:
    """The palette PNG the service sends against the encodings it was weighed against, each
    timed from the rendered bitmap (quantising included where it is done)."""
    document = pdfium.PdfDocument(pdf)
    rows: list[list[benchlib.Cell]] = []

    def palette_then(image: Image.Image, **options: Any) -> bytes:
        out = io.BytesIO()
        image.quantize(256, method=Image.Quantize.FASTOCTREE).save(out, **options)
        return out.getvalue()

    def directly(image: Image.Image, **options: Any) -> bytes:
        out = io.BytesIO()
        image.save(out, **options)
        return out.getvalue()

    options: list[tuple[str, Callable[..., bytes], dict[str, Any]]] = [
        ("PNG, 256 colours (sent)", palette_then, {"format": "PNG", "compress_level": 6}),
        ("PNG, full colour", directly, {"format": "PNG", "compress_level": 6}),
        (
            "WebP lossless, 256 colours",
            palette_then,
            {"format": "WEBP", "lossless": True, "method": 1, "quality": 25},
        ),
        ("WebP quality 90", directly, {"format": "WEBP", "quality": 90, "method": 0}),
    ]
    try:
        for number in ENCODING_PAGES:
            page = document[number - 1]
            image = page.render(scale=A4_WIDTH_150_DPI / page.get_width()).to_pil()
            page.close()
            for name, encode, settings in options:
                started = time.perf_counter()
                data = encode(image, **settings)
                elapsed = time.perf_counter() - started
                rows.append([number, name, elapsed * 1000, len(data) // 1024])
    finally:
        document.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="cold renders of every page")
    parser.add_argument("--reads", type=int, default=5, help="cached reads of every page")
    args = parser.parse_args(argv)
    pdf = benchlib.require_corpus() / benchlib.REFERENCE_PDF
    document = load_document(pdf).document
    pages = len(document.pages)

    service = service_level(pdf, document.sha256, pages, args.rounds, args.reads)
    http = http_level(pdf, pages, args.reads)
    boxes = highlight_times(pdf)
    encoded = encodings(pdf)

    cold, cached = service["cold"]["p50_ms"], service["cached"]["p50_ms"]
    met = cold <= TARGET_COLD_MS and cached <= TARGET_CACHED_MS
    print(f"## Page images: {pdf.name}, {pages} pages at {A4_WIDTH_150_DPI} px\n")
    rows: list[list[benchlib.Cell]] = []
    for level, results in (("service", service), ("HTTP in process", http)):
        for kind in ("cold", "cached", "not_modified"):
            if kind in results:
                r = results[kind]
                rows.append([level, kind, r["runs"], r["p50_ms"], r["p95_ms"], r["max_ms"]])
    rows.append(
        [
            "service",
            "highlight boxes",
            boxes["runs"],
            boxes["p50_ms"],
            boxes["p95_ms"],
            boxes["max_ms"],
        ]
    )
    print(benchlib.markdown_table(["level", "page", "runs", "p50 ms", "p95 ms", "max ms"], rows, 1))
    size = service["bytes"]
    print(
        f"\nBytes per image: median {size['median'] / 1024:,.0f} KiB, mean "
        f"{size['mean'] / 1024:,.0f} KiB, largest {size['max'] / 1024:,.0f} KiB; worker start "
        f"{service['worker_start_ms']:,.0f} ms (once per server, on the first page shown)."
    )
    print("\n### Encodings weighed (one rendered page, encoding only)\n")
    print(benchlib.markdown_table(["page", "encoding", "ms", "KiB"], encoded, 1))
    verdict = "met" if met else "NOT met"
    print(
        f"\nTargets p50 ≤ {TARGET_COLD_MS:.0f} ms cold and ≤ {TARGET_CACHED_MS:.0f} ms cached "
        f"(service): {verdict} ({cold:.1f} ms, {cached:.2f} ms)."
    )
    path = benchlib.write_results(
        "page_render",
        {
            "pdf": pdf.name,
            "pages": pages,
            "width_px": A4_WIDTH_150_DPI,
            "targets_ms": {"cold_p50": TARGET_COLD_MS, "cached_p50": TARGET_CACHED_MS},
            "target_met": met,
            "service": service,
            "http_in_process": http,
            "highlights": boxes,
            "encodings": [
                {"page": r[0], "encoding": r[1], "ms": r[2], "kib": r[3]} for r in encoded
            ],
        },
    )
    print(f"\nJSON: {path.relative_to(benchlib.REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
