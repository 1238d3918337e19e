"""The web page as the server sends it: the shell on every page path, its assets, its
configuration, and nothing that reaches outside the server (it must work air-gapped)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.build import build_app
from service.routers.web import STATIC_DIR, WEB_DIR
from service.settings import Settings
from tests.fakes import FakeEmbedder

FIRST_LOAD_LIMIT = 250 * 1024
PAGE_PATHS = [
    "/",
    "/library",
    "/documents/northland-national-security-strategy.pdf/pages/3",
    "/documents/a~0123456789ab.pdf/pages/99?quote=%3C%2Fscript%3E&collection=x",
    "/documents/x/pages/not-a-number",
]


def _client(settings: Settings) -> Iterator[TestClient]:
    app = build_app(settings, embedder=FakeEmbedder())
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from _client(Settings(index_dir=tmp_path_factory.mktemp("web")))


def _config(html: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="chancery-config">(.*?)</script>', html)
    assert found, html[:500]
    config: dict[str, object] = json.loads(found.group(1))
    return config


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_every_page_path_serves_the_shell(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<textarea id="question" name="question"' in response.text
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy


def test_the_api_stays_json(client: TestClient) -> None:
    response = client.get("/v1/no-such-route")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
    assert "/" not in client.get("/openapi.json").json()["paths"]


def test_without_an_llm_only_extractive_answers_are_offered(client: TestClient) -> None:
    assert _config(client.get("/").text) == {
        "answerers": ["extractive"],
        "default_answerer": "extractive",
    }


def test_with_an_llm_the_page_offers_both(tmp_path: Path) -> None:
    settings = Settings(
        index_dir=tmp_path,
        llm_base_url="http://127.0.0.1:9/v1",
        llm_model="m",
        answerer="generative",
    )
    for client in _client(settings):
        assert _config(client.get("/").text) == {
            "answerers": ["extractive", "generative"],
            "default_answerer": "generative",
        }


def _assets() -> list[Path]:
    return [WEB_DIR / "index.html", *sorted(p for p in STATIC_DIR.rglob("*") if p.is_file())]


def test_every_asset_the_shell_and_scripts_name_is_served(client: TestClient) -> None:
    html = (WEB_DIR / "index.html").read_text()
    named = set(re.findall(r'(?:href|src)="(/static/[^"]+)"', html))
    for script in (STATIC_DIR / "js").glob("*.js"):
        for module in re.findall(r'from "\./([\w.]+)"', script.read_text()):
            named.add(f"/static/js/{module}")
    assert "/static/js/main.js" in named and "/static/app.css" in named
    for url in sorted(named):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["cache-control"] == "no-cache"


def test_the_first_load_is_within_budget() -> None:
    # Every asset counts, loaded or not: an upper bound on what the first load transfers.
    total = sum(p.stat().st_size for p in _assets())
    assert total <= FIRST_LOAD_LIMIT, f"{total} bytes"


def test_nothing_is_fetched_from_outside() -> None:
    hosts = re.compile(r"(https?:)?//[\w.-]+\.[a-z]{2,}", re.IGNORECASE)
    css_loads = re.compile(r"@import|url\(")
    for asset in _assets():
        text = asset.read_text()
        found = [m.group(0) for m in hosts.finditer(text)]
        if asset.suffix == ".css":
            found += [m.group(0) for m in css_loads.finditer(text)]
        assert not found, f"{asset.name}: {found}"
