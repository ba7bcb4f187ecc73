"""Helpers shared by the service tests: app construction and the error-shape assertion."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from models.paths import DEFAULT_TURNTABLE_DIR
from service.api.main import create_app
from service.settings import Settings

# Every field of a pose response (tests/service/test_api.py, test_openapi.py).
RESPONSE_FIELDS = {
    "view",
    "coarse_view",
    "azimuth_deg",
    "tilt_deg",
    "roll_deg",
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
    "guidance",
}

# The real photo the default-model service tests post: a front-left three-quarter view of a clear car.
CLEAR_PHOTO = DEFAULT_TURNTABLE_DIR / "00087a6bd4dc_03.jpg"

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


@contextmanager
def default_model_client(model_dir: Path, **overrides: Any) -> Iterator[TestClient]:
    """A ready app with the embedded default model (real inference); skips without CLEAR_PHOTO."""
    if not CLEAR_PHOTO.is_file():
        pytest.skip(f"turntable photo not found at {CLEAR_PHOTO}")
    with running_client(Settings(model_dir=model_dir, device="cpu", **overrides)) as client:
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


class BackgroundPosts:
    """`count` POST /pose of one JPEG to a real server, each on its own thread, all started at once."""

    def __init__(self, url: str, data: bytes, count: int) -> None:
        self._statuses: list[int] = []
        self._threads = [threading.Thread(target=self._post, args=(url, data)) for _ in range(count)]
        for thread in self._threads:
            thread.start()

    def _post(self, url: str, data: bytes) -> None:
        response = httpx.post(f"{url}/pose", files={"image": ("a.jpg", data, "image/jpeg")}, timeout=120)
        self._statuses.append(response.status_code)

    def statuses(self, timeout_s: float = 120.0) -> list[int]:
        """Waits for every request, then their statuses in the order they answered."""
        for thread in self._threads:
            thread.join(timeout_s)
        return list(self._statuses)
