"""SIGTERM: new pose requests get 503 `shutting_down` while the admitted ones finish; then the process exits."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from devtools.uvicorn_server import server_env, uvicorn_server
from tests.service.helpers import BackgroundPosts, assert_error
from tests.service.images import jpeg_bytes


def test_sigterm_drains_admitted_requests_and_refuses_new_ones(default_model_dir: Path, tmp_path: Path) -> None:
    env = server_env(default_model_dir)
    data = jpeg_bytes(640, 480)
    with uvicorn_server(env, tmp_path / "uvicorn.log") as server:
        # Three at once on one worker: more than a second of work admitted before the signal.
        admitted = BackgroundPosts(server.url, data, 3)
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        refused = httpx.post(f"{server.url}/pose", files={"image": ("b.jpg", data, "image/jpeg")}, timeout=30)
        assert_error(refused, 503, "shutting_down")
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200  # still up while draining
        assert admitted.statuses() == [200, 200, 200], server.log_tail()
        try:
            server.process.wait(30)
        except Exception:  # pragma: no cover - reported below
            pytest.fail(f"the server did not stop after draining:\n{server.log_tail()}")
        # uvicorn re-raises the SIGTERM it captured once it has shut down: the exit status of a signalled process.
        assert server.process.returncode in (0, -signal.SIGTERM), server.log_tail()
        log = server.log_tail()
        assert log.index("drained") < log.index("Application shutdown complete"), log
