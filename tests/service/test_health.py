"""/healthz, /readyz, /model and /metrics on a ready app with the tiny model."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.metrics import REGISTRY
from service.postprocess import MODEL_CLASSES
from tests.service.images import jpeg_bytes


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_readyz_when_ready(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "detail": None}


def test_model_info(client: TestClient) -> None:
    response = client.get("/model")
    assert response.status_code == 200
    body = response.json()
    assert body["backend"] == "detectron2"
    assert body["name"] == "tiny_test_model"
    assert body["version"]
    assert body["device"] == "cpu"
    assert body["classes"] == list(MODEL_CLASSES)
    assert isinstance(body["card"], dict) and body["card"]["name"] == "tiny_test_model"


def sample_value(text: str, name: str, labels: dict[str, str]) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def test_metrics_after_a_pose_request(client: TestClient) -> None:
    response = client.post("/pose", files={"image": ("car.jpg", jpeg_bytes(), "image/jpeg")})
    assert response.status_code == 200, response.text
    view = response.json()["view"] or "none"

    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text

    count = sample_value(
        text, "carpose_request_duration_seconds_count", {"route": "/pose", "backend": "detectron2", "status": "200"}
    )
    assert count is not None and count >= 1, text
    for stage in ("decode", "inference", "postprocess"):
        stage_count = sample_value(
            text, "carpose_stage_duration_seconds_count", {"stage": stage, "backend": "detectron2"}
        )
        assert stage_count is not None and stage_count >= 1, stage
    views = sample_value(text, "carpose_views_total", {"view": view, "backend": "detectron2"})
    assert views is not None and views >= 1
    assert sample_value(text, "carpose_requests_in_flight", {}) == 0  # the request above has finished
    assert sample_value(text, "carpose_queue_depth", {"backend": "detectron2"}) == 0
    load_seconds = sample_value(text, "carpose_model_load_seconds", {})
    assert load_seconds is not None and load_seconds > 0


def test_metrics_count_errors(client: TestClient) -> None:
    response = client.post("/pose", files={"image": ("a.txt", b"hello", "text/plain")})
    assert response.status_code == 415
    value = sample_value(
        client.get("/metrics").text, "carpose_errors_total", {"code": "unsupported_media_type", "route": "/pose"}
    )
    assert value is not None and value >= 1


def test_docs_page(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swagger" in response.text.lower()


def test_the_openapi_document_is_its_own_route_in_the_metrics(client: TestClient) -> None:
    labels = {"route": "/openapi.json", "backend": "none", "status": "200"}
    before = REGISTRY.get_sample_value("carpose_request_duration_seconds_count", labels) or 0.0
    assert client.get("/openapi.json").status_code == 200
    assert REGISTRY.get_sample_value("carpose_request_duration_seconds_count", labels) == before + 1
