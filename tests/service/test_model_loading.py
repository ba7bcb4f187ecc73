"""503 while the model loads and when it failed to load; /healthz stays 200 throughout."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from service.model_state import ModelState
from tests.service.helpers import assert_error, running_client, tiny_settings
from tests.service.images import jpeg_bytes


def post_jpeg(client):
    return client.post("/pose", files={"image": ("car.jpg", jpeg_bytes(), "image/jpeg")})


def test_503_while_loading_then_ready(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    original_load = ModelState._load

    def blocked_load(self: ModelState) -> None:
        release.wait(60)
        original_load(self)

    monkeypatch.setattr(ModelState, "_load", blocked_load)
    try:
        with running_client(tiny_settings(tiny_model_dir), wait_ready=False) as client:
            assert client.get("/healthz").status_code == 200

            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["status"] == "loading"

            response = post_jpeg(client)
            assert_error(response, 503, "model_loading")
            assert int(response.headers["retry-after"]) > 0
            assert_error(client.get("/model"), 503, "model_loading")

            release.set()
            assert client.app.state.model.wait(120), client.app.state.model.error
            assert client.get("/readyz").status_code == 200
            assert post_jpeg(client).status_code == 200
    finally:
        release.set()  # never leave the loader thread blocked, whatever failed above


def test_503_when_the_model_failed_to_load(tmp_path: Path) -> None:
    with running_client(tiny_settings(tmp_path), wait_ready=False) as client:
        assert not client.app.state.model.wait(60)
        assert client.get("/healthz").status_code == 200

        ready = client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "failed"
        assert "model.json" in body["detail"]

        response = post_jpeg(client)
        body = assert_error(response, 503, "model_unavailable")
        assert "model.json" in body["error"]["message"]
        assert_error(client.get("/model"), 503, "model_unavailable")
