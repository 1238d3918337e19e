"""What the browser tests share: finding Chromium and axe-core, screenshots, and the geometry
that checks a highlight against the characters of its quote.

Playwright drives Debian's Chromium (`apt-get install chromium`), never a browser Playwright
downloads. Where Chromium, Playwright or axe-core is missing the browser tests skip with the
reason, except in CI (CI=1), where they fail: CI must run them.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import REPO

if TYPE_CHECKING:
    from playwright.sync_api import Page

AXE = REPO / "var" / "node" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPO / "var" / "test-artifacts" / "web"
BLOCKING_IMPACTS = frozenset({"serious", "critical"})


def need(ok: bool, message: str) -> None:
    """Skip (fail in CI) unless `ok`."""
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the browser tests (`make test` installs it)")
    pytest.skip(message)


def chromium_path() -> Path:
    found = shutil.which("chromium") or "/usr/bin/chromium"
    need(Path(found).exists(), "chromium is not installed (as root: apt-get install chromium)")
    return Path(found)


def launch_arguments() -> list[str]:
    # A container's /dev/shm is often too small for Chromium's shared memory.
    arguments = ["--disable-dev-shm-usage"]
    # Chromium refuses to start its sandbox as root; a container's root has no other way.
    return [*arguments, "--no-sandbox"] if os.geteuid() == 0 else arguments


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it stands (the page's context must bypass its
    Content-Security-Policy, which refuses injected scripts)."""
    need(AXE.exists(), f"axe-core is not installed at {AXE} (`make browser-tools`)")
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        "() => axe.run(document, {resultTypes: ['violations']}).then(r => r.violations)"
    )
    return found


def blocking(violations: list[dict[str, Any]]) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in violations
        if v.get("impact") in BLOCKING_IMPACTS
    ]


@dataclass(frozen=True)
class Box:
    """A rectangle as fractions of the page, from its top left corner."""

    left: float
    top: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height

    def holds(self, x: float, y: float, slack: float = 0.0) -> bool:
        return (
            self.left - slack <= x <= self.right + slack
            and self.top - slack <= y <= self.bottom + slack
        )


def shown_boxes(page: Page, image_selector: str, box_selector: str) -> list[Box]:
    """The boxes as the browser lays them out, as fractions of the image as it is shown."""
    image = page.locator(image_selector).bounding_box()
    assert image and image["width"] > 0 and image["height"] > 0
    boxes = []
    for element in page.locator(box_selector).all():
        shown = element.bounding_box()
        assert shown is not None
        boxes.append(
            Box(
                (shown["x"] - image["x"]) / image["width"],
                (shown["y"] - image["y"]) / image["height"],
                shown["width"] / image["width"],
                shown["height"] / image["height"],
            )
        )
    return boxes


def quote_char_centres(pdf: Path, page_number: int, quote: str) -> list[tuple[float, float]]:
    """The centres of the first and last characters of `quote` on the PDF page, as PDFium
    places them, as fractions of the page from its top left: what a highlight must cover. The
    quote's first and last few words are looked up in PDFium's own text of the page (the stored
    text may differ in its spacing)."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf)
    try:
        page = document[page_number - 1]
        width, height = page.get_size()
        text = page.get_textpage()
        words = quote.split()
        first = _found(text, " ".join(words[:4]))
        last_phrase = " ".join(words[-3:])
        last = _found(text, last_phrase) + len(last_phrase) - 1
        centres = []
        for index in (first, last):
            left, bottom, right, top = text.get_charbox(index)
            centres.append(((left + right) / 2 / width, 1 - (bottom + top) / 2 / height))
        return centres
    finally:
        document.close()


def _found(text: Any, phrase: str) -> int:
    searcher = text.search(phrase, match_case=True)
    hit = searcher.get_next()
    assert hit is not None, f"PDFium does not find {phrase!r} on the page"
    index: int = hit[0]
    return index
