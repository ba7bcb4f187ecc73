"""Fixtures for the web page tests: the service under real uvicorn, and one headless Debian Chromium.

Chromium comes from Debian's `chromium` package (scripts/install_browser.sh), driven by Playwright for Python
through `executable_path`; Playwright's own browser download is never used. Tests skip, saying why, when either
is missing.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.uvicorn_server import server_env, uvicorn_server
from service.settings import REPO_ROOT

CHROMIUM = Path(os.environ.get("CARPOSE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts" / "web"
READY_TIMEOUT_S = float(os.environ.get("CARPOSE_TEST_READY_TIMEOUT_S", "300"))
# Small enough that the client-side size check can be tested without pushing 10 MB through the browser,
# large enough for every Car Parts test image.
TEST_MAX_UPLOAD_BYTES = 2_000_000
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


class LiveServer:
    """`uvicorn service.api.main:app` in a subprocess on 127.0.0.1 (devtools/uvicorn_server.py), ready once
    /readyz answers 200, configured for the page tests."""

    def __init__(self, model_dir: Path, log_path: Path, **settings: str) -> None:
        env = server_env(model_dir, max_upload_bytes=str(TEST_MAX_UPLOAD_BYTES), log_level="warning", **settings)
        self._stack = ExitStack()
        self._server = self._stack.enter_context(
            uvicorn_server(env, log_path, READY_TIMEOUT_S, ("--log-level", "warning", "--no-access-log"))
        )
        self.url = self._server.url

    def log_tail(self, chars: int = 4000) -> str:
        return self._server.log_tail(chars)

    def pose(self, image: Path, render: bool = False, render_parts: bool = True) -> dict[str, Any]:
        """What the API itself answers for this photo: the page must agree with it. `render_parts=False`: the
        image as the page asks for it (no parts, no caption)."""
        with image.open("rb") as fh:
            response = httpx.post(
                f"{self.url}/pose",
                params={"render": str(render).lower(), "render_parts": str(render_parts).lower()},
                files={"image": (image.name, fh, "image/jpeg")},
                timeout=120.0,
            )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def stop(self) -> None:
        self._stack.close()


@pytest.fixture(scope="session")
def playwright_browser() -> Iterator[Any]:
    """One headless Debian Chromium for the whole session (the machine is small and shared)."""
    if not CHROMIUM.is_file() and shutil.which("chromium") is None:
        pytest.skip(f"chromium not found at {CHROMIUM}: run scripts/install_browser.sh (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[dev]' (never `playwright install`)")
    executable = CHROMIUM if CHROMIUM.is_file() else Path(str(shutil.which("chromium")))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR


@pytest.fixture(scope="session")
def tiny_server(
    tiny_model_dir: Path, playwright_browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The service with the tiny random-weights model, Rekognition disabled."""
    server = LiveServer(tiny_model_dir, tmp_path_factory.mktemp("uvicorn") / "tiny.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def default_server(
    default_model_dir: Path, playwright_browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The service with the embedded trained model (skips until it exists)."""
    server = LiveServer(default_model_dir, tmp_path_factory.mktemp("uvicorn") / "default.log")
    yield server
    server.stop()


@pytest.fixture()
def rekognition_server(tiny_model_dir: Path, playwright_browser: Any, tmp_path: Path) -> Iterator[LiveServer]:
    """The service with POSE_REKOGNITION_ENABLED=true; listing the backend calls no AWS API. Stopped right after."""
    server = LiveServer(tiny_model_dir, tmp_path / "rekognition.log", rekognition_enabled="true")
    yield server
    server.stop()


class PageWatch:
    """Console errors and requests that leave 127.0.0.1: the page must have neither."""

    def __init__(self, page: Any) -> None:
        self.console_errors: list[str] = []
        self.external_requests: list[str] = []
        self.pose_requests: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.console_errors.append(f"pageerror: {exc}"))
        page.on("request", self._request)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            text = message.text
            # The page logs nothing itself; a failed fetch of an error status shows up as a console error.
            if "Failed to load resource" in text and "status of" in text:
                return
            self.console_errors.append(text)

    def _request(self, request: Any) -> None:
        url = str(request.url)
        if url.startswith(("data:", "blob:")):
            return
        if not url.startswith("http://127.0.0.1:"):
            self.external_requests.append(url)
        if "/pose" in url and request.method == "POST":
            self.pose_requests.append(url)

    def check(self) -> None:
        assert not self.external_requests, f"the page loaded external resources: {self.external_requests}"
        assert not self.console_errors, f"console errors: {self.console_errors}"


def new_page(browser: Any, viewport: dict[str, int], **context_options: Any) -> tuple[Any, Any, PageWatch]:
    context = browser.new_context(viewport=viewport, **context_options)
    context.set_default_timeout(60_000)  # a real inference on a busy 2-core machine
    page = context.new_page()
    return context, page, PageWatch(page)


def answer(status: int, body: dict[str, Any]) -> Callable[[Any], None]:
    """A Playwright route handler answering JSON in place of the service (one-argument: route only)."""
    payload = json.dumps(body)

    def handler(route: Any) -> None:
        route.fulfill(status=status, content_type="application/json", body=payload)

    return handler
