"""The web page: one HTML shell at `/`, `/library` and the deep links
`/documents/{doc_id}/pages/{n}`, and its CSS and JavaScript under `/static/`.

Everything the page needs is served from here, and its Content-Security-Policy lets it load
nothing from anywhere else: it works on an air-gapped workstation. The shell carries the one
thing the page cannot learn from the API, which answerers the server offers.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from service.answerers import EXTRACTIVE
from service.deps import AppSettings
from service.settings import Settings

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
STATIC_DIR = WEB_DIR / "static"
CONFIG_MARK = "{{CONFIG}}"
GENERATIVE = "generative"
SECURITY_HEADERS = {
    # Only this server: no CDN, no fonts, no frames; images may also be blob: (none today).
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The shell is tiny; always revalidate, so an upgraded server is never shown a stale page.
    "Cache-Control": "no-cache",
}


class _Revalidated(StaticFiles):
    """Static files that the browser revalidates on every load (a 304 when unchanged), so a
    new version of the page never runs with an old script."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.setdefault("Cache-Control", "no-cache")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response


def offered_answerers(settings: Settings) -> list[str]:
    """What a reader may choose: extractive always, generative when an LLM is configured."""
    return [EXTRACTIVE, GENERATIVE] if settings.llm_base_url else [EXTRACTIVE]


def page_config(settings: Settings) -> dict[str, object]:
    return {"answerers": offered_answerers(settings), "default_answerer": settings.answerer}


@cache
def _shell() -> str:
    return (WEB_DIR / "index.html").read_text(encoding="utf-8")


def render_shell(settings: Settings) -> str:
    """The HTML shell with the page's configuration as a JSON data block (never executed)."""
    # `<` escaped, so no value can close the <script> element that holds the JSON.
    config = json.dumps(page_config(settings)).replace("<", "\\u003c")
    return _shell().replace(CONFIG_MARK, config)


router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
@router.get("/library", response_class=HTMLResponse)
@router.get("/documents/{doc_id}/pages/{number}", response_class=HTMLResponse)
def shell(settings: AppSettings) -> HTMLResponse:
    """The page; it reads its own address to open the view the path names. A deep link's page
    number is checked by the page, which says in words when it does not exist."""
    return HTMLResponse(render_shell(settings), headers=SECURITY_HEADERS)


def install(app: FastAPI) -> None:
    """The page's routes and its static files."""
    app.include_router(router)
    app.mount("/static", _Revalidated(directory=STATIC_DIR), name="static")
