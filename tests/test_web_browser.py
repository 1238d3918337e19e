"""The web page in a real browser: Playwright drives Debian's Chromium against `chancery serve`
on a data root whose collection `default` holds two sample documents (one upload job, the
module's one index build) and an empty collection `archive`. The tests of API keys create keys
in that data root for their own length (the server reads its key store at every request), so the
same server then asks for them.

Each step leaves a screenshot in var/test-artifacts/web/. Without Chromium, Playwright or
axe-core the tests skip with the reason, except in CI, where they fail (see tests/browser.py).
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote as url_quote

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Request,
    Route,
    expect,
    sync_playwright,
)

from service import subprocess_server
from service.keys import KeyNotFoundError, KeyStore, Scope
from tests import browser
from tests.conftest import REPO, SAMPLES

STARTUP_SECONDS = 180
JOB_SECONDS = 600
WAIT_MS = 60_000
"""Playwright's expectations wait up to this for the page; generous for a busy two-core box."""
FIRST_LOAD_LIMIT = 250 * 1024
PIXEL_SLACK = 1.5

PDF = "northland-national-security-strategy.pdf"
BRIEF = "northland-energy-brief.md"
NOTE = "astoria-relations-note.html"
WHO_COORDINATES = "Who is responsible for coordinating the implementation of the strategy?"
RENEWABLES = "What share of Northland's electricity came from renewable sources in 2024?"
VELMARK = "Where has the informal café dialogue between officials been held since 2016?"
UNANSWERABLE = "What does Serbia's strategy say about Hungary's energy ties with Russia?"


# -- the server and the browser ------------------------------------------------------------------


def _finished(http: httpx.Client, response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    url = response.json()["url"]
    deadline = time.monotonic() + JOB_SECONDS
    while time.monotonic() < deadline:
        job: dict[str, Any] = http.get(url).json()
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"the job {url} did not finish within {JOB_SECONDS} s")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web") / "data"


@pytest.fixture(scope="module")
def server(data_root: Path) -> Iterator[str]:
    browser.chromium_path()  # no server to start when the tests cannot run
    log = data_root.parent / "server.log"
    env = {"CHANCERY_DATA_DIR": str(data_root)}
    try:
        with (
            subprocess_server.running_server(
                None, log, ready="/healthz", startup_seconds=STARTUP_SECONDS, env=env, cwd=REPO
            ) as base_url,
            httpx.Client(base_url=base_url, timeout=120) as http,
        ):
            files = [("files", (name, (SAMPLES / name).read_bytes())) for name in (PDF, BRIEF)]
            job = _finished(http, http.post("/v1/collections/default/documents", files=files))
            assert job["state"] == "succeeded", job
            assert {f["status"] for f in job["files"]} == {"ok"}, job
            assert http.post("/v1/collections", json={"name": "archive"}).status_code == 201
            yield base_url
    except subprocess_server.ServerStartError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def api(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=120) as http:
        yield http


@pytest.fixture(scope="module")
def chromium(request: pytest.FixtureRequest) -> Iterator[Browser]:
    executable = browser.chromium_path()
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(executable), headless=True, args=browser.launch_arguments()
        )
        yield launched
        launched.close()
    note(request, f"browser test screenshots: {browser.ARTIFACTS}")


def note(request: pytest.FixtureRequest, line: str) -> None:
    """A line in pytest's output, captured or not: where the screenshots are, what was
    measured."""
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.ensure_newline()
        reporter.write_line(line)


class Watched:
    """A browser context on the server that records what must not happen: a script error, a
    console error (a Content-Security-Policy refusal is one), a request to any other host."""

    def __init__(self, chromium: Browser, server: str, **options: Any) -> None:
        self.server = server
        self.context: BrowserContext = chromium.new_context(base_url=server, **options)
        self.context.set_default_timeout(WAIT_MS)
        self.problems: list[str] = []
        self.context.on("request", self._request)

    def _request(self, request: Any) -> None:
        # blob: addresses of the server's origin are the page's own memory (an image fetched
        # with the API key).
        inside = (self.server, "data:", f"blob:{self.server}")
        if not request.url.startswith(inside):
            self.problems.append(f"request outside the server: {request.url}")

    def page(self) -> Page:
        page = self.context.new_page()
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on("console", lambda message: self._console(message))
        return page

    def _console(self, message: Any) -> None:
        # A refused image or highlight request is logged by Chromium; the page says it in words.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.problems.append(f"console error: {message.text}")


@pytest.fixture
def watched(chromium: Browser, server: str) -> Iterator[Watched]:
    context = Watched(chromium, server, viewport={"width": 1280, "height": 900})
    yield context
    context.context.close()
    assert not context.problems, context.problems


@pytest.fixture
def page(watched: Watched) -> Page:
    return watched.page()


# -- helpers -------------------------------------------------------------------------------------


def open_page(page: Page, path: str = "/") -> None:
    page.goto(path)
    page.wait_for_selector("body[data-ready=true]")


def ask(page: Page, question: str) -> None:
    box = page.locator("textarea[name=question]")
    box.fill(question)
    box.press("Enter")
    expect(page.locator("#ask-status")).to_have_text(re.compile("Answered|do not answer"))


def ask_api(api: httpx.Client, question: str) -> dict[str, Any]:
    response = api.post("/v1/ask", json={"question": question})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def image_route_exists(api: httpx.Client, citation: dict[str, Any]) -> bool:
    """Whether the server draws the cited page: then the viewer must show it as an image."""
    doc, page = citation["doc_id"], citation["page"]
    url = f"/v1/collections/default/documents/{doc}/pages/{page}/image?width=400"
    return api.get(url).status_code == 200


def citation_of(api: httpx.Client, question: str) -> dict[str, Any]:
    citations: list[dict[str, Any]] = ask_api(api, question)["citations"]
    assert citations, question
    return citations[0]


def check_highlight(page: Page, api: httpx.Client, citation: dict[str, Any]) -> list[browser.Box]:
    """The viewer shows the cited page, and its highlight lies over the quote's characters:
    boxes on the page image where the server draws it (checked against the server's boxes and
    against PDFium's boxes of the quote's first and last characters), else the quote marked in
    the page's text. Returns the boxes shown (none for text)."""
    viewer = page.locator("[data-testid=page-view]")
    expect(viewer).to_be_visible()
    where = f"page {citation['page']}"
    expect(page.locator("#page-heading")).to_contain_text(where)
    expect(page.locator("#page-position")).to_have_text(re.compile(rf"^Page {citation['page']} of"))
    highlight = page.locator("[data-testid=highlight]")
    expect(highlight.first).to_be_visible()
    if not (citation["doc"].endswith(".pdf") and image_route_exists(api, citation)):
        expect(highlight).to_have_count(1)
        expect(highlight).to_have_text(citation["quote"])
        return []

    image = page.locator("#page-image")
    page.wait_for_function(
        "() => { const i = document.getElementById('page-image'); "
        "return i.complete && i.naturalWidth > 0; }"
    )
    source = image.get_attribute("src") or ""
    # With an API key the image is fetched with it and shown from memory (a blob: address).
    assert f"/pages/{citation['page']}/image" in source or source.startswith("blob:"), source
    shown = browser.shown_boxes(page, "#page-image", "[data-testid=highlight]")
    doc, number = citation["doc_id"], citation["page"]
    served = api.get(
        f"/v1/collections/default/documents/{doc}/pages/{number}/highlights",
        params={"start": citation["quote_start"], "end": citation["quote_end"]},
    ).json()["boxes"]
    image_box = image.bounding_box()
    assert image_box is not None
    slack = PIXEL_SLACK / image_box["width"]
    assert len(shown) == len(served)
    for box, expected in zip(shown, served, strict=True):
        for side in ("left", "top", "width", "height"):
            assert abs(getattr(box, side) - expected[side]) <= slack, (side, box, expected)
    centres = browser.quote_char_centres(SAMPLES / citation["doc"], number, citation["quote"])
    for x, y in centres:
        assert any(box.holds(x, y, slack) for box in shown), ((x, y), shown)
    top = min(y for _, y in centres)
    bottom = max(y for _, y in centres)
    line = max(box.height for box in shown)
    assert all(top - line <= b.top and b.bottom <= bottom + line for b in shown), shown
    return shown


# -- the tests -----------------------------------------------------------------------------------


def test_the_first_load_is_small_and_stays_on_the_server(
    watched: Watched, request: pytest.FixtureRequest
) -> None:
    page = watched.page()
    sizes: list[int] = []
    page.on(
        "requestfinished",
        lambda request: sizes.append(
            request.sizes()["responseBodySize"] + request.sizes()["responseHeadersSize"]
        ),
    )
    open_page(page)
    page.wait_for_load_state("networkidle")
    browser.screenshot(page, "01-first-load")
    measured = f"{sum(sizes)} bytes in {len(sizes)} requests"
    note(request, f"first load of /: {measured} (limit {FIRST_LOAD_LIMIT})")
    assert sum(sizes) <= FIRST_LOAD_LIMIT, measured
    expect(page.locator("#collection-picker")).to_be_visible()  # default and archive
    expect(page.locator("#answerer-choice")).to_be_hidden()  # no LLM configured


def test_an_answer_streams_in_with_citations_that_open_the_cited_page(
    page: Page, api: httpx.Client
) -> None:
    open_page(page)
    ask(page, WHO_COORDINATES)
    markers = page.locator("[data-testid=citation]")
    expect(markers.first).to_be_visible()
    citation = citation_of(api, WHO_COORDINATES)
    source = page.locator("[data-testid=source]").first
    expect(source).to_contain_text(citation["title"])
    expect(source).to_contain_text("page 3 (printed 1)")
    expect(source).to_contain_text(citation["quote"])
    browser.screenshot(page, "02-answer")

    markers.first.click()
    expect(page).to_have_url(re.compile(rf"/documents/{re.escape(citation['doc_id'])}/pages/3\?"))
    shown = check_highlight(page, api, citation)
    browser.screenshot(page, "03-cited-page")

    page.get_by_role("button", name="Zoom in").click()
    expect(page.locator("#zoom-level")).to_have_text("125%")
    check_highlight(page, api, citation)  # the boxes follow the image
    if shown:  # the page as an image: its text is one click away, the quote marked in it too
        page.get_by_role("button", name="Show the text of this page").click()
        expect(page.locator("[data-testid=text-highlight]")).to_have_text(citation["quote"])
    browser.screenshot(page, "03b-zoomed")


def test_a_deep_link_opens_the_same_page_with_the_same_highlight(
    watched: Watched, api: httpx.Client
) -> None:
    asking = watched.page()
    open_page(asking)
    ask(asking, WHO_COORDINATES)
    link = asking.locator("[data-testid=citation]").first.get_attribute("href")
    assert link and link.startswith("/documents/")
    asking.locator("[data-testid=citation]").first.click()
    citation = citation_of(api, WHO_COORDINATES)
    first = check_highlight(asking, api, citation)
    heading = asking.locator("#page-heading").text_content()

    shared = watched.page()
    open_page(shared, link)
    expect(shared.locator("#page-heading")).to_have_text(heading or "")
    again = check_highlight(shared, api, citation)
    flat = [side for box in first for side in (box.left, box.top, box.width, box.height)]
    assert [s for b in again for s in (b.left, b.top, b.width, b.height)] == pytest.approx(
        flat, abs=0.002
    )
    browser.screenshot(shared, "04-deep-link")


def test_a_document_without_page_images_shows_its_text_with_the_quote_marked(
    page: Page, api: httpx.Client
) -> None:
    citation = citation_of(api, RENEWABLES)
    assert citation["doc"] == BRIEF
    open_page(page)
    ask(page, RENEWABLES)
    page.locator("[data-testid=citation]").first.click()
    check_highlight(page, api, citation)
    assert page.locator("[data-testid=page-text]").is_visible()
    browser.screenshot(page, "05-text-page")


def test_an_unanswerable_question_shows_the_closest_passages_each_openable(page: Page) -> None:
    open_page(page)
    ask(page, UNANSWERABLE)
    abstention = page.locator("[data-testid=abstention]")
    expect(abstention).to_be_visible()
    expect(abstention).to_contain_text("The documents do not answer this")
    passages = page.locator("[data-testid=passage-link]")
    expect(passages.first).to_be_visible()
    expect(page.locator("[data-testid=citation]")).to_have_count(0)
    browser.screenshot(page, "06-abstention")

    passage = page.locator("[data-testid=passage]").first
    where = passage.locator(".source-page").text_content() or ""
    pages = re.search(r"pages? (\d+)", where)
    assert pages, where
    passages.first.click()
    expect(page.locator("[data-testid=page-view]")).to_be_visible()
    expect(page.locator("#page-position")).to_have_text(re.compile(rf"^Page {pages.group(1)} of"))
    expect(page.locator("[data-testid=highlight]").first).to_be_visible()
    browser.screenshot(page, "07-passage-page")


def test_an_upload_appears_in_the_library_is_found_and_deleted(page: Page) -> None:
    open_page(page, "/library")
    rows = page.locator("[data-testid=library-row]")
    expect(rows).to_have_count(2)
    page.evaluate(
        """() => {
          window.progress = [];
          const bar = document.getElementById('upload-bar');
          const wrap = document.getElementById('upload-progress');
          new MutationObserver(() => window.progress.push([bar.value, wrap.hidden]))
            .observe(bar, {attributes: true});
        }"""
    )
    page.locator("#file-input").set_input_files(str(SAMPLES / NOTE))
    result = page.locator("[data-testid=upload-result]")
    expect(result).to_have_text(re.compile(rf"^{re.escape(NOTE)}: added \(1 page\)"))
    expect(rows).to_have_count(3)
    note_row = rows.filter(has_text=NOTE)
    expect(note_row).to_contain_text("Northland–Astoria Relations")
    progress = page.evaluate("window.progress")
    assert [100, False] in progress, progress  # the bar was shown, and filled
    browser.screenshot(page, "08-uploaded")

    # Dropped onto the drop zone: an empty file is refused, with the reason.
    page.evaluate(
        """() => {
          const files = new DataTransfer();
          files.items.add(new File([''], 'empty.txt', {type: 'text/plain'}));
          const zone = document.getElementById('drop-zone');
          for (const type of ['dragover', 'drop']) {
            zone.dispatchEvent(new DragEvent(type, {dataTransfer: files, bubbles: true,
                                                    cancelable: true}));
          }
        }"""
    )
    expect(result).to_have_text(re.compile(r"^empty\.txt: not added: \S.*\.$"))
    expect(rows).to_have_count(3)
    browser.screenshot(page, "09-dropped-empty-file")

    open_page(page, "/")
    ask(page, VELMARK)
    expect(page.locator("[data-testid=source]").filter(has_text=NOTE).first).to_be_visible()
    browser.screenshot(page, "10-found-in-upload")

    open_page(page, "/library")
    page.get_by_role("button", name="Delete Northland–Astoria Relations").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(NOTE)
    browser.screenshot(page, "11-confirm-delete")
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator("#upload-status")).to_contain_text("was deleted")
    expect(rows).to_have_count(2)
    expect(page.locator("[data-testid=library]")).not_to_contain_text(NOTE)
    browser.screenshot(page, "12-deleted")

    open_page(page, "/")
    ask(page, VELMARK)
    expect(page.locator("[data-testid=source]").filter(has_text=NOTE)).to_have_count(0)


def test_keyboard_alone_asks_opens_a_citation_turns_the_page_and_comes_back(page: Page) -> None:
    open_page(page)
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("textarea[name=question]")).to_be_focused()
    page.keyboard.type("Who is responsible for coordinating")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("the implementation of the strategy?")
    assert "\n" in page.locator("textarea[name=question]").input_value()
    page.keyboard.press("Enter")
    expect(page.locator("[data-testid=citation]").first).to_be_visible()

    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.testid") == "citation":
            break
    expect(page.locator("[data-testid=citation]").first).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#page-heading")).to_be_focused()
    expect(page.locator("#page-position")).to_have_text(re.compile(r"^Page 3 of"))
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "page-next":
            break
    expect(page.locator("#page-next")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#page-position")).to_have_text(re.compile(r"^Page 4 of"))
    browser.screenshot(page, "13-keyboard-next-page")
    page.keyboard.press("Escape")
    expect(page.locator("[data-testid=page-view]")).to_be_hidden()
    expect(page.locator("[data-testid=citation]").first).to_be_focused()


def test_no_serious_accessibility_violations(chromium: Browser, server: str) -> None:
    # axe-core is injected as a script, which the page's own policy refuses.
    watched = Watched(chromium, server, viewport={"width": 1280, "height": 900}, bypass_csp=True)
    try:
        page = watched.page()
        open_page(page)
        ask(page, WHO_COORDINATES)
        page.locator("[data-testid=citation]").first.click()
        page.locator("[data-testid=highlight]").first.wait_for()
        found = {"answer and page": browser.blocking(browser.axe_violations(page))}
        open_page(page)
        ask(page, UNANSWERABLE)
        found["abstention"] = browser.blocking(browser.axe_violations(page))
        open_page(page, "/library")
        page.locator("[data-testid=library-row]").first.wait_for()
        found["library"] = browser.blocking(browser.axe_violations(page))
        assert found == {"answer and page": [], "abstention": [], "library": []}
    finally:
        watched.context.close()
    assert not watched.problems, watched.problems


def test_a_phone_width_page_is_usable(chromium: Browser, server: str, api: httpx.Client) -> None:
    watched = Watched(chromium, server, viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = watched.page()
        open_page(page)
        ask(page, WHO_COORDINATES)
        browser.screenshot(page, "14-phone-answer")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.locator("[data-testid=citation]").first.click()
        check_highlight(page, api, citation_of(api, WHO_COORDINATES))
        expect(page.locator("[data-testid=highlight]").first).to_be_in_viewport()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        browser.screenshot(page, "15-phone-page")
        open_page(page, "/library")
        page.locator("[data-testid=library-row]").first.wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        browser.screenshot(page, "16-phone-library")
    finally:
        watched.context.close()
    assert not watched.problems, watched.problems


def test_errors_are_said_in_words(page: Page) -> None:
    open_page(page)
    page.locator("#collection").select_option("archive")
    expect(page).to_have_url(re.compile(r"\?collection=archive$"))
    ask_error = page.locator("#ask-error")
    page.locator("textarea[name=question]").fill(WHO_COORDINATES)
    page.locator("textarea[name=question]").press("Enter")
    expect(ask_error).to_contain_text("no documents yet")
    assert "{" not in (ask_error.text_content() or "")
    browser.screenshot(page, "17-error-empty-collection")

    open_page(page, f"/documents/{url_quote(PDF)}/pages/99?collection=default")
    page_error = page.locator("#page-error")
    expect(page_error).to_contain_text("has pages 1 to 10")
    assert "{" not in (page_error.text_content() or "")
    browser.screenshot(page, "18-error-no-such-page")


def test_the_answerer_is_offered_when_an_llm_is_and_its_refusal_is_said_in_words(
    page: Page, server: str
) -> None:
    """This server has no LLM; the shell is altered in flight to offer one anyway, as a server
    with an LLM would, so the choice is shown and the server's refusal reaches the reader."""

    def offering_an_llm(route: Route) -> None:
        response = route.fetch()
        shell = response.text()
        offered = shell.replace(
            '"answerers": ["extractive"]', '"answerers": ["extractive", "generative"]'
        )
        assert offered != shell
        route.fulfill(response=response, body=offered)

    page.route(f"{server}/", offering_an_llm)
    open_page(page)
    choice = page.locator("#answerer-choice")
    expect(choice).to_be_visible()
    expect(choice.get_by_label("Quotes from the documents")).to_be_checked()
    choice.get_by_label("The LLM").check()
    page.locator("textarea[name=question]").fill(WHO_COORDINATES)
    page.locator("textarea[name=question]").press("Enter")
    ask_error = page.locator("#ask-error")
    expect(ask_error).to_contain_text("no 'generative' answerer")
    assert "{" not in (ask_error.text_content() or "")
    browser.screenshot(page, "19-error-no-llm")


# -- API keys ------------------------------------------------------------------------------------

KEY_DIALOG = "An API key is needed"
KEY_STORE = "chancery-api-key"
UNKNOWN_KEY = f"chy_{'0' * 12}_{'A' * 43}"
"""Shaped like a key, known to no server."""


@dataclass(frozen=True)
class Keys:
    reader: str
    """Reads the collection `default`."""
    archivist: str
    """Reads the collection `archive` only."""
    archivist_name: str


def _forgive(server: str, key: str) -> None:
    """One call with a valid key: the server forgets this address's failed attempts, so no test
    inherits another's (five within a minute would slow the address down, 429)."""
    with httpx.Client(base_url=server, timeout=120) as http:
        response = http.get("/v1/collections", headers={"authorization": f"Bearer {key}"})
        assert response.status_code == 200, response.text


@pytest.fixture
def keys(server: str, data_root: Path) -> Iterator[Keys]:
    """Two keys in the server's data root for the length of one test: while they are live,
    every API call needs one; revoked afterwards, the server is open again."""
    store = KeyStore(data_root)
    suffix = secrets.token_hex(4)
    names = (f"reader-{suffix}", f"archivist-{suffix}")
    try:
        _, reader = store.create(names[0], ["default"], Scope.READ)
        _, archivist = store.create(names[1], ["archive"], Scope.READ)
        _forgive(server, reader)
        yield Keys(reader, archivist, names[1])
        _forgive(server, reader)
    finally:
        for name in names:
            with contextlib.suppress(KeyNotFoundError):
                store.revoke(name)
        store.close()


@pytest.fixture
def keyed_api(server: str, keys: Keys) -> Iterator[httpx.Client]:
    headers = {"authorization": f"Bearer {keys.reader}"}
    with httpx.Client(base_url=server, timeout=120, headers=headers) as http:
        yield http


def key_dialog(page: Page) -> Locator:
    return page.get_by_role("dialog", name=KEY_DIALOG)


def give_key(page: Page, key: str) -> None:
    dialog = key_dialog(page)
    expect(dialog).to_be_visible()
    box = dialog.get_by_label("API key", exact=True)
    expect(box).to_be_focused()
    box.fill(key)
    dialog.get_by_role("button", name="Use this key").click()


def submit_question(page: Page, question: str) -> None:
    box = page.locator("textarea[name=question]")
    box.fill(question)
    box.press("Enter")


def stored(page: Page) -> dict[str, Any]:
    """What the page keeps in the browser: its session and local storage, and its cookies."""
    kept: dict[str, Any] = page.evaluate(
        """() => ({session: {...sessionStorage}, local: {...localStorage},
                   cookie: document.cookie})"""
    )
    kept["cookies"] = page.context.cookies()
    return kept


def test_a_key_is_asked_for_refused_in_words_and_kept_for_this_tab_only(
    watched: Watched, keys: Keys, keyed_api: httpx.Client
) -> None:
    page = watched.page()
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    page.goto("/")
    # The page cannot list the collections without a key: it asks at once.
    dialog = key_dialog(page)
    box = dialog.get_by_label("API key", exact=True)
    expect(dialog).to_be_visible()
    expect(box).to_be_focused()
    expect(page.locator("#key-forget")).to_be_hidden()
    browser.screenshot(page, "20-key-asked")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    ask_error = page.locator("#ask-error")
    expect(ask_error).to_have_text(re.compile(r"^This server needs an API key\. .*\.$"))

    submit_question(page, WHO_COORDINATES)
    expect(dialog).to_be_visible()
    expect(box).to_be_focused()
    box.fill(UNKNOWN_KEY)
    dialog.get_by_role("button", name="Use this key").click()
    refusal = dialog.locator("#key-error")
    expect(refusal).to_have_text(re.compile(r"^That key was not accepted\."))
    expect(dialog).to_be_visible()
    expect(box).to_be_focused()
    expect(box).to_have_value("")
    expect(box).to_have_attribute("aria-invalid", "true")
    assert UNKNOWN_KEY not in str(stored(page)), "a refused key is forgotten"
    browser.screenshot(page, "21-key-refused")

    box.fill(keys.reader)
    with page.expect_request(lambda r: "/pages/3/image" in r.url) as image_request:
        dialog.get_by_role("button", name="Use this key").click()
        expect(dialog).to_be_hidden()
        expect(page.locator("#ask-status")).to_have_text(re.compile("^Answered"))
        expect(ask_error).to_be_empty()
        citation = citation_of(keyed_api, WHO_COORDINATES)
        expect(page.locator("[data-testid=source]").first).to_contain_text(citation["title"])
        expect(page.locator("#key-forget")).to_be_visible()
        # Listed now that there is a key: only what the key may use.
        expect(page.locator("#collection option")).to_have_text(["default (2 documents)"])
        browser.screenshot(page, "22-key-answer")
        page.locator("[data-testid=citation]").first.click()
        check_highlight(page, keyed_api, citation)
    assert image_request.value.all_headers().get("authorization") == f"Bearer {keys.reader}"
    assert (page.locator("#page-image").get_attribute("src") or "").startswith("blob:")
    browser.screenshot(page, "23-key-cited-page")

    # Kept for this tab: a reload asks no more; never in localStorage, a cookie or an address.
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("[data-testid=highlight]").first).to_be_visible()
    expect(dialog).to_be_hidden()
    kept = stored(page)
    assert kept == {"session": {KEY_STORE: keys.reader}, "local": {}, "cookie": "", "cookies": []}
    secret = keys.reader.rsplit("_", 1)[1]
    assert not [r.url for r in requests if secret in r.url or keys.reader in r.url]
    assert secret not in page.url


def test_a_key_for_another_collection_is_refused_in_words(page: Page, keys: Keys) -> None:
    forbidden = f"The key '{keys.archivist_name}' may not use the collection 'default'."
    page.goto(f"/documents/{url_quote(PDF)}/pages/3?collection=default")
    give_key(page, keys.archivist)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page_error = page.locator("#page-error")
    expect(page_error).to_have_text(forbidden)
    browser.screenshot(page, "24-key-other-collection-page")

    open_page(page, "/?collection=default")  # the key stays for the tab: not asked again
    submit_question(page, WHO_COORDINATES)
    ask_error = page.locator("#ask-error")
    expect(ask_error).to_have_text(forbidden)
    expect(key_dialog(page)).to_be_hidden()
    expect(page.locator("#answer")).to_be_hidden()
    browser.screenshot(page, "25-key-other-collection-ask")


def test_a_declined_key_is_asked_for_again_only_when_the_reader_acts(
    page: Page, keys: Keys
) -> None:
    page.goto("/library")  # lists the collections, then the documents: two calls refused
    dialog = key_dialog(page)
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    # The second call is refused in words, without asking again.
    library_error = page.locator("#library-error")
    expect(library_error).to_have_text(re.compile(r"^This server needs an API key\."))
    expect(dialog).to_be_hidden()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    browser.screenshot(page, "26-key-declined")

    page.get_by_role("link", name="Documents").click()  # the reader acts: asked again
    give_key(page, keys.reader)
    expect(page.locator("[data-testid=library-row]")).to_have_count(2)
    expect(library_error).to_be_empty()


def test_forgetting_the_key_clears_it_and_asks_again(page: Page, keys: Keys) -> None:
    page.goto("/")
    give_key(page, keys.reader)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    forget = page.get_by_role("button", name="Forget the API key")
    expect(forget).to_be_visible()
    assert stored(page)["session"] == {KEY_STORE: keys.reader}

    forget.click()
    # The page is loaded afresh, keeping nothing it was shown with the key, and asks again.
    dialog = key_dialog(page)
    expect(dialog).to_be_visible()
    assert stored(page)["session"] == {}
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#ask-error")).to_contain_text("This server needs an API key")
    expect(forget).to_be_hidden()
    assert stored(page)["session"] == {}


def test_the_key_dialog_has_no_serious_accessibility_violations(
    chromium: Browser, server: str, keys: Keys
) -> None:
    # axe-core is injected as a script, which the page's own policy refuses.
    watched = Watched(chromium, server, viewport={"width": 1280, "height": 900}, bypass_csp=True)
    try:
        page = watched.page()
        page.goto("/")
        dialog = key_dialog(page)
        expect(dialog).to_be_visible()
        found = {"asked": browser.blocking(browser.axe_violations(page))}
        give_key(page, UNKNOWN_KEY)
        expect(dialog.locator("#key-error")).not_to_be_empty()
        found["refused"] = browser.blocking(browser.axe_violations(page))
        give_key(page, keys.reader)
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        expect(page.locator("#key-forget")).to_be_visible()
        found["with a key"] = browser.blocking(browser.axe_violations(page))
        assert found == {"asked": [], "refused": [], "with a key": []}
    finally:
        watched.context.close()
    assert not watched.problems, watched.problems
