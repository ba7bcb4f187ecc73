"""Helpers shared by the service tests: app construction and the error-shape assertion."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings

# Every field of a pose response (tests/service/test_api.py, test_openapi.py).
RESPONSE_FIELDS = {
    "view",
    "coarse_view",
    "azimuth_deg",
    "tilt_deg",
    "confidence",
    "reason",
    "cars_detected",
    "car",
    "wheels",
    "parts",
    "image",
    "backend",
    "model",
    "timings_ms",
    "rendered_image",
    "quality",
}

READY_TIMEOUT_S = 120.0  # the machine may be busy; the tiny model is ready in seconds when it is not


def tiny_settings(model_dir: Path, **overrides: Any) -> Settings:
    return Settings(model_dir=model_dir, device="cpu", **overrides)


@contextmanager
def running_client(settings: Settings, wait_ready: bool = True) -> Iterator[TestClient]:
    """TestClient with the app's lifespan running (the model loads on its background thread)."""
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        if wait_ready:
            assert app.state.model.wait(READY_TIMEOUT_S), f"model not ready: {app.state.model.error}"
        yield client


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is `{"error": {"code": code, "message": ...}}` with this status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body
