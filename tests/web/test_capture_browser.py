"""The guided-capture page (/capture) in a real headless Chromium on an emulated phone, its camera a fake device
fed from a real turntable photo, against the service with the embedded model under real uvicorn.

One flow, one page load (the machine is small): the first guidance, the live check telling a wrong-angle frame
which way to walk, a dark photo told `too_dark` through the camera-app fallback, the checklist completed with the
right photos, the /coverage summary and the zip; then an axe-core check of the screen. Screenshots of each step
go to docs/capture/ (committed, so a reader sees the flow; the camera preview masked) when
CARPOSE_CAPTURE_SCREENSHOTS=1, else to test-artifacts/web/capture/.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from models.paths import DEFAULT_TURNTABLE_DIR
from service.settings import REPO_ROOT

from .conftest import CHROMIUM, CHROMIUM_ARGS, LiveServer

pytestmark = pytest.mark.browser

FRONT = DEFAULT_TURNTABLE_DIR / "00087a6bd4dc_01.jpg"  # the camera's view: the car's front (azimuth 0)
LEFT = DEFAULT_TURNTABLE_DIR / "00087a6bd4dc_05.jpg"  # its left side (azimuth 90)
# Playwright's "Pixel 7" descriptor (device emulation: a phone viewport, touch, a mobile user agent). Spelled out:
# this module launches its own Chromium through the session's Playwright, whose `devices` it cannot reach.
PHONE_DEVICE: dict[str, Any] = {
    "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36",
    "viewport": {"width": 412, "height": 839},
    "screen": {"width": 412, "height": 915},
    "device_scale_factor": 2.625,
    "is_mobile": True,
    "has_touch": True,
}
CHECK_TIMEOUT_MS = 90_000  # a few real inferences on a busy 2-core machine


def write_y4m(photo: Path, path: Path, width: int = 960, height: int = 640) -> None:
    """One frame of YUV 4:2:0 (BT.601 full range, what Chromium's fake capture reads) from a photo."""
    rgb = np.asarray(Image.open(photo).convert("RGB").resize((width, height)), dtype=np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = (b - y) * 0.564 + 128.0
    v = (r - y) * 0.713 + 128.0

    def half(plane: np.ndarray) -> np.ndarray:
        return plane.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))

    planes = [np.clip(p, 0, 255).astype(np.uint8).tobytes() for p in (y, half(u), half(v))]
    header = f"YUV4MPEG2 W{width} H{height} F5:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + b"FRAME\n" + b"".join(planes))


def darkened(photo: Path, path: Path, gain: float = 0.2) -> Path:
    pixels = np.asarray(Image.open(photo).convert("RGB"), dtype=np.float32) * gain
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=92)
    return path


@pytest.fixture(scope="module")
def camera_browser(
    playwright_browser: Any, default_server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """A second Chromium whose camera is a fake device showing the car's front (the session browser has none),
    launched by the session's Playwright (one per process)."""
    if not FRONT.is_file() or not LEFT.is_file():
        pytest.skip(f"turntable photos not found in {DEFAULT_TURNTABLE_DIR}")
    video = tmp_path_factory.mktemp("camera") / "front.y4m"
    write_y4m(FRONT, video)
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    executable = CHROMIUM if CHROMIUM.is_file() else Path(str(shutil.which("chromium")))
    browser = playwright_browser.browser_type.launch(executable_path=str(executable), args=args, headless=True)
    try:
        yield browser
    finally:
        browser.close()


FOR_DOCS = os.environ.get("CARPOSE_CAPTURE_SCREENSHOTS") == "1"


def screenshots_dir() -> Path:
    target = REPO_ROOT / ("docs/capture" if FOR_DOCS else "test-artifacts/web/capture")
    target.mkdir(parents=True, exist_ok=True)
    return target


def snap(page: Any, path: Path, full_page: bool = False) -> None:
    """A screenshot; for docs/ the camera preview is masked: the turntable photos are evaluation-only data,
    never shipped in the project."""
    mask = [page.locator("#preview")] if FOR_DOCS else []
    page.screenshot(path=str(path), full_page=full_page, mask=mask, mask_color="#333333")


def test_guided_capture_flow_on_a_phone(camera_browser: Any, default_server: LiveServer, tmp_path: Path) -> None:
    context = camera_browser.new_context(**PHONE_DEVICE, permissions=["camera"], accept_downloads=True)
    context.set_default_timeout(CHECK_TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    shots = screenshots_dir()
    expect.set_options(timeout=CHECK_TIMEOUT_MS)
    try:
        page.goto(f"{default_server.url}/capture?required=front,left")
        checklist = page.locator("#checklist li")
        expect(checklist).to_have_count(2)
        expect(page.locator("#next-view")).to_have_text("front")
        snap(page, shots / "1-start.png")

        # The camera shows the front: the live check finds it on target and takes the shot by itself.
        page.get_by_role("button", name="Start camera").tap()
        expect(page.locator('#checklist li[data-view="front"]')).to_have_class("done")
        expect(page.locator("#next-view")).to_have_text("left")
        snap(page, shots / "2-front-kept.png")

        # Still at the front, now after the left side (azimuth 90): walk counter-clockwise, to the seller's right.
        guidance = page.locator("#guidance")
        expect(guidance).to_have_attribute("data-codes", "walk_right")
        expect(guidance).to_contain_text("to your right")
        # The arc on the pictogram runs counter-clockwise (SVG sweep flag 0).
        expect(page.locator("#walk-arc")).to_have_attribute("d", re.compile(r"^M .* A 78 78 0 0 0 "))
        snap(page, shots / "3-walk-right.png")
        page.get_by_role("button", name="Stop camera").tap()

        # The camera app's photo of the left side, too dark: told so, not kept.
        page.locator("#file-input").set_input_files(str(darkened(LEFT, tmp_path / "dark-left.jpg")))
        # too_dark first (a dark car also reads soft: hold_still may follow).
        expect(guidance).to_have_attribute("data-codes", re.compile(r"^too_dark\b"))
        expect(guidance).to_contain_text("Too dark")
        expect(page.locator('#checklist li[data-view="left"]')).not_to_have_class("done")
        snap(page, shots / "4-too-dark.png")

        # The same side in good light: kept, the set is complete and /coverage's summary is shown.
        page.locator("#file-input").set_input_files(str(LEFT))
        expect(page.locator("#summary")).to_be_visible()
        expect(page.locator("#summary-text")).to_contain_text("Complete: all 2 views")
        expect(page.locator("#progress")).to_have_text("2 of 2")
        snap(page, shots / "5-summary.png", full_page=True)

        with page.expect_download() as download_info:
            page.get_by_role("button", name="Download photos and report (zip)").tap()
        archive = zipfile.ZipFile(io.BytesIO(Path(download_info.value.path()).read_bytes()))
        assert archive.testzip() is None
        assert sorted(archive.namelist()) == ["coverage.json", "front.jpg", "left.jpg"]
        assert b'"complete": true' in archive.read("coverage.json")

        check_accessibility(page)
        assert not errors, errors
    finally:
        expect.set_options(timeout=5_000)  # Playwright's default, for the other page tests
        context.close()


def check_accessibility(page: Any) -> None:
    """axe-core (bundled by axe-playwright-python) on the capture screen: no serious or critical violation."""
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        pytest.skip("axe-playwright-python is not installed: pip install -e '.[dev]'")
    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
    assert not bad, [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in bad]
