"""Metrics: a registry per app, requests by route template, stages, indexes read at scrape time,
ingest jobs as they end."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from starlette.staticfiles import StaticFiles

from service.build import build_app
from service.metrics import (
    OTHER,
    UNMATCHED,
    IndexStats,
    Metrics,
    RequestMetrics,
    Stage,
    render,
    stages_from_timings,
)
from service.settings import Settings
from tests.fakes import FakeEmbedder
from tests.pdf_factory import write_pdf

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parsed(exposition: str) -> Samples:
    found = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def samples(metrics: Metrics) -> Samples:
    body, content_type = render(metrics)
    assert content_type.startswith("text/plain")
    return parsed(body.decode())


def test_two_apps_count_apart_and_the_global_registry_stays_clean() -> None:
    first, second = Metrics(), Metrics()
    first.observe_request("/v1/ask", "POST", 200, 0.1)
    key = (
        "chancery_http_requests_total",
        (("method", "POST"), ("route", "/v1/ask"), ("status", "200")),
    )
    assert samples(first)[key] == 1
    assert key not in samples(second)
    assert REGISTRY.get_sample_value("chancery_http_requests_total") is None


def test_answers_count_abstentions_drops_and_stage_times() -> None:
    metrics = Metrics()
    timings = {
        "embed_ms": 10,
        "dense_ms": 5,
        "lexical_ms": 3,
        "fuse_ms": 2,
        "answer_ms": 300,
        "llm_ms": 250,
        "total_ms": 321,
    }
    stages = stages_from_timings(timings)
    assert stages == {
        Stage.RETRIEVAL: 0.02,
        Stage.ANSWERING: 0.3,
        Stage.LLM: 0.25,
        Stage.TOTAL: 0.321,
    }
    metrics.observe_answer(
        collection="c", answerer="generative", abstained=False, dropped=2, stages=stages
    )
    metrics.observe_answer(
        collection="c", answerer="generative", abstained=True, dropped=0, stages=stages
    )
    found = samples(metrics)
    labels = (("answerer", "generative"), ("collection", "c"))
    assert found[("chancery_answers_total", labels)] == 2
    assert found[("chancery_abstentions_total", labels)] == 1
    assert found[("chancery_verification_dropped_sentences_total", labels)] == 2
    for stage in Stage:
        count = (
            "chancery_answer_stage_duration_seconds_count",
            (("answerer", "generative"), ("stage", stage.value)),
        )
        assert found[count] == 2
    total = (
        "chancery_answer_stage_duration_seconds_sum",
        (("answerer", "generative"), ("stage", "total")),
    )
    assert abs(found[total] - 0.642) < 1e-9


def test_stages_leave_out_what_the_answer_did_not_time() -> None:
    assert stages_from_timings({"answer_ms": 5, "total_ms": 7}) == {
        Stage.ANSWERING: 0.005,
        Stage.TOTAL: 0.007,
    }


def test_ingest_jobs_by_outcome_and_pages() -> None:
    metrics = Metrics()
    metrics.observe_job(collection="c", outcome="succeeded", pages=12)
    metrics.observe_job(collection="c", outcome="failed", pages=0)
    found = samples(metrics)
    assert (
        found[("chancery_ingest_jobs_total", (("collection", "c"), ("outcome", "succeeded")))] == 1
    )
    assert found[("chancery_ingest_jobs_total", (("collection", "c"), ("outcome", "failed")))] == 1
    assert found[("chancery_ingest_pages_total", (("collection", "c"),))] == 12


def test_indexes_are_read_at_each_scrape() -> None:
    listed = [IndexStats("serbia", "v-1", documents=3, chunks=40)]
    metrics = Metrics(index_stats=lambda: listed)
    found = samples(metrics)
    assert found[("chancery_index_info", (("collection", "serbia"), ("version", "v-1")))] == 1
    assert found[("chancery_index_documents", (("collection", "serbia"),))] == 3
    assert found[("chancery_index_chunks", (("collection", "serbia"),))] == 40
    listed[:] = [IndexStats("kosovo", None, documents=0, chunks=0)]
    found = samples(metrics)
    assert ("chancery_index_chunks", (("collection", "serbia"),)) not in found
    assert found[("chancery_index_info", (("collection", "kosovo"), ("version", "")))] == 1


def test_a_failing_index_listing_leaves_the_other_metrics_served() -> None:
    def broken() -> list[IndexStats]:
        raise OSError("collection folder vanished")

    metrics = Metrics(index_stats=broken)
    metrics.observe_request("/healthz", "GET", 200, 0.001)
    found = samples(metrics)
    assert not any(name.startswith("chancery_index") for name, _ in found)
    assert any(name == "chancery_http_requests_total" for name, _ in found)


def app_with_metrics(static_dir: str | None = None) -> tuple[TestClient, Metrics]:
    metrics = Metrics()
    app = FastAPI()

    @app.get("/v1/collections/{name}/documents/{doc_id}")
    def document(name: str, doc_id: str) -> dict[str, str]:
        if doc_id == "missing":
            raise HTTPException(404, "no such document")
        return {"name": name}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("bug")

    if static_dir is not None:
        app.mount("/static", StaticFiles(directory=static_dir))
    app.add_middleware(RequestMetrics, metrics=metrics)
    return TestClient(app, raise_server_exceptions=False), metrics


def count(metrics: Metrics, route: str, status: str, method: str = "GET") -> float:
    key = (
        "chancery_http_requests_total",
        (("method", method), ("route", route), ("status", status)),
    )
    return samples(metrics).get(key, 0)


def test_requests_are_labelled_by_template_not_path(tmp_path: object) -> None:
    client, metrics = app_with_metrics(str(tmp_path))
    client.get("/v1/collections/a/documents/x")
    client.get("/v1/collections/b/documents/y")
    client.get("/v1/collections/b/documents/missing")
    client.get("/no/such/route/1")
    client.get("/no/such/route/2")
    client.get("/static/nothing.css")
    client.get("/boom")
    template = "/v1/collections/{name}/documents/{doc_id}"
    assert count(metrics, template, "200") == 2
    assert count(metrics, template, "404") == 1
    assert count(metrics, UNMATCHED, "404") == 2
    assert count(metrics, OTHER, "404") == 1
    assert count(metrics, "/boom", "500") == 1
    durations = samples(metrics)[
        ("chancery_http_request_duration_seconds_count", (("method", "GET"), ("route", template)))
    ]
    assert durations == 3


def test_an_upload_job_is_counted_with_its_pages_once_it_ends(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "made.pdf", ["Gas storage must be full.", "Winter comes early."])
    settings = Settings(data_dir=tmp_path / "data", rate_limit_rps=None)
    app = build_app(settings, embedder=FakeEmbedder(), data_root=True)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        files = [
            ("files", ("storage.pdf", pdf.read_bytes(), "application/pdf")),
            ("files", ("notes.txt", b"Pipelines cross the border at two points.", "text/plain")),
        ]
        accepted = client.post("/v1/collections/default/documents", files=files)
        assert accepted.status_code == 202, accepted.text
        # Waits for the worker to let go of the job, which is after it has been counted.
        job = app.state.library.runner.wait(accepted.json()["job_id"], 60)
        assert job.state == "succeeded"
        scrape = client.get("/metrics")
    assert scrape.status_code == 200
    found = parsed(scrape.text)
    default = (("collection", "default"),)
    assert found[("chancery_ingest_jobs_total", (*default, ("outcome", "succeeded")))] == 1
    assert found[("chancery_ingest_pages_total", default)] == 3
    assert ("chancery_ingest_jobs_total", (*default, ("outcome", "failed"))) not in found
