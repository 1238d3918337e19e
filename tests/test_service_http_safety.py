"""Host check, CORS policy and security headers over a tiny app, as a browser would meet them."""

from __future__ import annotations

from collections.abc import Sequence

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

from service.http_safety import (
    LOOPBACK_HOSTS,
    CorsPolicy,
    SecurityHeaders,
    TrustedHosts,
    host_name,
    host_pattern,
)

PAGE_CSP = "default-src 'self'"


def tiny_app(hosts: Sequence[str] = LOOPBACK_HOSTS, origins: Sequence[str] = ()) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/thing")
    def thing() -> dict[str, str]:
        return {"ok": "yes"}

    @app.post("/v1/thing")
    def make_thing() -> dict[str, str]:
        return {"ok": "made"}

    @app.get("/page", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse("<p>hi</p>", headers={"Content-Security-Policy": PAGE_CSP})

    # Added last is outermost: the order service/app.py uses.
    app.add_middleware(CorsPolicy, origins=origins)
    app.add_middleware(TrustedHosts, hosts=hosts)
    app.add_middleware(SecurityHeaders)
    return app


def client(app: FastAPI, host: str = "127.0.0.1:8000") -> TestClient:
    return TestClient(app, base_url=f"http://{host}")


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:8000", "localhost:1", "LOCALHOST", "[::1]:8000", "[::1]"]
)
def test_loopback_names_are_trusted_by_default(host: str) -> None:
    response = client(tiny_app()).get("/v1/thing", headers={"host": host})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "0.0.0.0", "[::2]"]
)
def test_other_hosts_get_a_readable_400(host: str) -> None:
    response = client(tiny_app()).get("/v1/thing", headers={"host": host})
    assert response.status_code == 400
    assert "CHANCERY_TRUSTED_HOSTS" in response.json()["detail"]
    assert response.headers["x-content-type-options"] == "nosniff"  # security headers too


def test_a_deployment_names_its_hosts_with_wildcards() -> None:
    app = tiny_app(hosts=["chancery.example.org", "*.intra.example", "10.0.0.5"])
    test = client(app)
    for good in (
        "chancery.example.org",
        "CHANCERY.example.org.:443",
        "a.intra.example",
        "10.0.0.5:80",
    ):
        assert test.get("/v1/thing", headers={"host": good}).status_code == 200, good
    for bad in ("intra.example", "127.0.0.1", "example.org"):
        assert test.get("/v1/thing", headers={"host": bad}).status_code == 400, bad


def test_star_trusts_any_host() -> None:
    assert (
        client(tiny_app(hosts=["*"])).get("/v1/thing", headers={"host": "x.y"}).status_code == 200
    )


def test_host_parsing() -> None:
    assert host_name("[::1]:8000") == "[::1]"
    assert host_name("Example.org.:80") == "example.org"
    assert host_name("a b") is None
    assert host_name("::1") is None  # IPv6 in a Host header comes in brackets
    assert host_name(None) is None
    assert host_pattern("::1") == "[::1]"
    for bad in ("localhost:8000", "[::1]:80", "[zz::1]", "a/b", ""):
        with pytest.raises(ValueError, match="not a host name"):
            host_pattern(bad)


def preflight(test: TestClient, origin: str = "https://portal.example.org") -> httpx2.Response:
    return test.options(
        "/v1/thing",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_cors_is_off_by_default_with_a_clear_refusal() -> None:
    test = client(tiny_app())
    refused = preflight(test)
    assert refused.status_code == 403
    assert "CHANCERY_CORS_ORIGINS" in refused.json()["detail"]
    simple = test.get("/v1/thing", headers={"Origin": "https://portal.example.org"})
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers


def test_an_allowed_origin_gets_a_proper_preflight_and_response() -> None:
    test = client(tiny_app(origins=["https://portal.example.org/"]))
    allowed = preflight(test)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://portal.example.org"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in allowed.headers
    simple = test.post("/v1/thing", headers={"Origin": "https://portal.example.org"})
    assert simple.headers["access-control-allow-origin"] == "https://portal.example.org"
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
    other = preflight(test, origin="https://evil.example")
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    stranger = test.get("/v1/thing", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in stranger.headers


def test_origins_are_checked() -> None:
    for bad in ("portal.example.org", "https://portal.example.org/path", "ftp://x"):
        with pytest.raises(ValueError, match="not an origin"):
            tiny_app(origins=[bad]).build_middleware_stack()


def test_every_response_forbids_sniffing_framing_and_referrers() -> None:
    test = client(tiny_app())
    for response in (test.get("/v1/thing"), test.get("/nowhere"), test.post("/v1/thing")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["content-security-policy"] == "frame-ancestors 'none'"


def test_a_page_keeps_its_own_content_security_policy() -> None:
    response = client(tiny_app()).get("/page")
    assert response.headers.get_list("content-security-policy") == [PAGE_CSP]
    assert response.headers["x-frame-options"] == "DENY"
