"""Route templates with their prefixes: `/v1/ask` and `/v1/collections/{name}/ask` are two
routes in the metrics and the audit log, though FastAPI keeps one router's part in the scope."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient

from service.audit import read_audit
from service.build import build_app
from service.collections import CollectionRegistry
from service.route_template import route_template
from service.settings import Settings
from tests.answerer_contract import FILES
from tests.fakes import FakeEmbedder, build_index


def _app() -> TestClient:
    routes = APIRouter()

    @routes.get("/search")
    def search(request: Request) -> str | None:
        return route_template(request.scope)

    @routes.get("/documents/{doc_id}/pages/{number}")
    def page(doc_id: str, number: int, request: Request) -> str | None:
        return route_template(request.scope)

    app = FastAPI()
    app.include_router(routes, prefix="/v1")
    app.include_router(routes, prefix="/v1/collections/{name}")

    @app.get("/healthz")
    def healthz(request: Request) -> str | None:
        return route_template(request.scope)

    return TestClient(app)


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/v1/search", "/v1/search"),
        ("/v1/collections/default/search", "/v1/collections/{name}/search"),
        # A collection named like a literal segment before it, or like the route's own part.
        ("/v1/collections/v1/search", "/v1/collections/{name}/search"),
        ("/v1/collections/collections/search", "/v1/collections/{name}/search"),
        ("/v1/collections/search/search", "/v1/collections/{name}/search"),
        (
            "/v1/collections/default/documents/default/pages/3",
            "/v1/collections/{name}/documents/{doc_id}/pages/{number}",
        ),
        ("/v1/documents/a.pdf/pages/2", "/v1/documents/{doc_id}/pages/{number}"),
        ("/healthz", "/healthz"),
    ],
)
def test_the_template_keeps_its_prefix(path: str, template: str) -> None:
    response = _app().get(path)
    assert response.status_code == 200
    assert response.json() == template


def test_no_route_has_no_template() -> None:
    assert route_template({"type": "http", "path": "/x"}) is None


def test_the_audit_and_the_metrics_tell_the_two_search_routes_apart(tmp_path: Path) -> None:
    registry: CollectionRegistry[None] = CollectionRegistry(tmp_path, lambda _: None)
    build_index(registry.ensure_default().index_dir, FILES, FakeEmbedder()).close()
    settings = Settings(data_dir=tmp_path, rate_limit_rps=None)
    app = build_app(settings, embedder=FakeEmbedder(), data_root=True)
    question = {"question": "How many border crossings are there?"}
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for path in ("/v1/search", "/v1/collections/default/search"):
            assert client.post(path, json=question).status_code == 200
        scrape = client.get("/metrics").text
    routes = [record.route for record in read_audit(tmp_path / "audit")]
    assert routes == ["/v1/search", "/v1/collections/{name}/search"]
    for template in routes:
        assert f'route="{template}",status="200"' in scrape, scrape
