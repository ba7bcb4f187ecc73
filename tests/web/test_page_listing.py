"""The page's listing features in a real headless Chromium against real uvicorn: the photo-set (coverage) mode
and the API key prompt.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageFilter
from playwright.sync_api import expect

from models.paths import DEFAULT_TURNTABLE_DIR
from service.postprocess.vocabulary import VIEWS
from tests.service.images import jpeg_bytes

from .conftest import DESKTOP, LiveServer, new_page

pytestmark = pytest.mark.browser

PHOTO = DEFAULT_TURNTABLE_DIR / "00087a6bd4dc_03.jpg"  # front-left three-quarter view of a clear car
KEY = "page-key-7c1d"


@pytest.fixture(scope="module")
def set_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    if not PHOTO.is_file():
        pytest.skip(f"turntable photo not found at {PHOTO}")
    folder = tmp_path_factory.mktemp("set")
    blurred = folder / "blurred.jpg"
    Image.open(PHOTO).filter(ImageFilter.GaussianBlur(6)).save(blurred, "JPEG")
    notes = folder / "notes.txt"
    notes.write_text("not a photo")
    return [PHOTO, blurred, notes]


def coverage_by_api(server: LiveServer, files: list[Path]) -> dict[str, Any]:
    upload = [("images", (f.name, f.read_bytes(), "application/octet-stream")) for f in files]
    response = httpx.post(f"{server.url}/coverage", files=upload, timeout=120.0)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_set_mode_fills_the_checklist_like_the_api(
    playwright_browser: Any, default_server: LiveServer, set_files: list[Path], artifacts_dir: Path
) -> None:
    expected = coverage_by_api(default_server, set_files)
    context, page, watch = new_page(playwright_browser, DESKTOP)
    try:
        page.goto(default_server.url + "/")
        page.wait_for_selector("body[data-backends-loaded='true']", state="attached")
        page.check('input[name="mode"][value="set"]')
        assert page.is_hidden("#upload") and page.is_visible("#set-form")
        page.set_input_files("#set-files", [str(f) for f in set_files])
        page.click("#set-send")
        page.wait_for_selector("#set-result:not([hidden])", state="visible", timeout=120_000)
        page.screenshot(path=artifacts_dir / "desktop_coverage_set.png", full_page=True)

        states = page.eval_on_selector_all("#checklist li", "els => els.map(e => [e.dataset.view, e.dataset.state])")
        assert [view for view, _ in states] == list(VIEWS)
        for view, state in states:
            assert state == ("covered" if view in expected["covered"] else "missing"), view
        assert page.get_attribute("#set-verdict", "data-complete") == "false"
        photos = page.locator("#set-photos li")
        assert photos.count() == 3
        usable = page.eval_on_selector_all("#set-photos li", "els => els.map(e => e.dataset.usable)")
        assert usable == [str(p["usable"]).lower() for p in expected["photos"]]
        assert "blurred" in photos.nth(1).text_content()
        assert "notes.txt" in photos.nth(2).text_content() and "could not be read" in photos.nth(2).text_content()
        watch.check()
    finally:
        context.close()


@pytest.fixture()
def keyed_server(tiny_model_dir: Path, playwright_browser: Any, tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tiny_model_dir, tmp_path / "keyed.log", api_keys=KEY)
    yield server
    server.stop()


def test_the_page_asks_for_a_key_and_sends_it(
    playwright_browser: Any, keyed_server: LiveServer, tmp_path: Path
) -> None:
    photo = tmp_path / "car.jpg"
    photo.write_bytes(jpeg_bytes())
    context, page, watch = new_page(playwright_browser, DESKTOP)
    sent_keys: list[str | None] = []
    page.on("request", lambda r: sent_keys.append(r.headers.get("x-api-key")) if "/pose" in r.url else None)
    try:
        page.goto(keyed_server.url + "/")
        page.wait_for_selector("#key-form:not([hidden])", state="visible")  # /backends answered 401
        page.fill("#api-key", "wrong-key")
        page.click("#key-send")
        # A locator wait, not wait_for_function: the page's CSP forbids the eval that a string predicate needs.
        expect(page.locator("#key-status")).to_contain_text("refused", timeout=30_000)
        assert page.is_visible("#key-form")

        page.fill("#api-key", KEY)
        page.click("#key-send")
        page.wait_for_selector("#key-form", state="hidden")
        page.set_input_files("#file", str(photo))
        page.click("#send")
        page.wait_for_selector("#result:not([hidden]), #status[data-state='error']", state="visible", timeout=120_000)
        assert page.is_visible("#result"), page.text_content("#status")
        assert sent_keys == [KEY]
        watch.check()
    finally:
        context.close()
    assert KEY not in keyed_server.log_tail(100_000)


def test_set_mode_required_picker_thumbnails_and_confidence(
    playwright_browser: Any, tiny_server: LiveServer, set_files: list[Path], artifacts_dir: Path
) -> None:
    """`?required=` preselects the picker, the request carries the ticked views, each photo has its thumbnail
    and its confidence (marked "not sure" below the floor)."""
    context, page, watch = new_page(playwright_browser, DESKTOP)
    try:
        page.goto(tiny_server.url + "/?required=front,back")
        page.wait_for_selector("body[data-backends-loaded='true']", state="attached")
        page.check('input[name="mode"][value="set"]')
        ticked = page.eval_on_selector_all("#required-views input:checked", "els => els.map(e => e.value)")
        assert ticked == ["front", "back"]
        page.check('#required-views input[value="left"]')
        page.set_input_files("#set-files", [str(f) for f in set_files])
        with page.expect_request("**/coverage?*") as sent:
            page.click("#set-send")
        assert "required=front%2Cleft%2Cback" in sent.value.url
        page.wait_for_selector("#set-result:not([hidden])", state="visible", timeout=120_000)
        states = page.eval_on_selector_all("#checklist li", "els => els.map(e => e.dataset.view)")
        assert states == ["front", "left", "back"]
        page.wait_for_function("() => [...document.querySelectorAll('#set-photos img.thumb')].every(i => i.complete)")
        widths = page.eval_on_selector_all("#set-photos img.thumb", "els => els.map(e => e.naturalWidth)")
        assert len(widths) == 2 and all(w > 0 for w in widths)  # the text file (an error) gets none
        confidences = page.locator("#set-photos .photo-confidence")
        assert confidences.count() == 2  # the two photos have an answer, the text file an error
        for i in range(2):
            text = confidences.nth(i).text_content()
            unsure = confidences.nth(i).get_attribute("data-unsure") == "true"
            assert "%" in text and (("not sure" in text) == unsure)
        page.screenshot(path=artifacts_dir / "desktop_coverage_picker.png", full_page=True)
        watch.check()
    finally:
        context.close()
