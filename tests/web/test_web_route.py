"""GET / and the static files, without a browser (fast; no model is loaded)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.main import create_app
from service.api.routers.web import STATIC_DIR
from service.settings import Settings


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    # No `with`: the lifespan (model loading) never runs, and the page needs no model.
    settings = Settings(
        model_dir=tmp_path_factory.mktemp("no_model"),
        max_upload_bytes=1_234_567,
        coverage_min_confidence=0.8,
        warmup=False,
    )
    return TestClient(create_app(settings))


def test_index_is_the_page_with_settings_filled_in(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert '<meta name="carpose-max-upload-bytes" content="1234567">' in html
    assert '<meta name="carpose-sure-confidence" content="0.8">' in html  # the /coverage floor
    assert "__" not in html  # every placeholder filled
    version = re.search(r'/static/app\.js\?v=([0-9a-f]{12})"', html)
    assert version and f"/static/style.css?v={version.group(1)}" in html
    assert response.headers["cache-control"] == "no-cache"
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(("name", "media_type"), [("app.js", "javascript"), ("style.css", "text/css")])
def test_static_assets_are_served(client: TestClient, name: str, media_type: str) -> None:
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    assert media_type in response.headers["content-type"]
    assert response.content == (STATIC_DIR / name).read_bytes()


@pytest.mark.parametrize("name", ["index.html", "app.js", "style.css"])
def test_static_files_are_self_contained(name: str) -> None:
    text = (STATIC_DIR / name).read_text(encoding="utf-8")
    # No CDN, no web fonts, no external anything: the page must work on an offline network.
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", text), name
    assert "@import" not in text and "url(http" not in text
    if name == "app.js":
        # API data is inserted with textContent only.
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in text, sink


def test_page_has_accessible_controls() -> None:
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<label[^>]*for="file"', html) and 'id="file"' in html and 'type="file"' in html
    assert 'accept="image/*" capture="environment"' in html
    assert re.search(r'<button id="send" type="submit"', html)
    assert re.search(r'<label for="backend">', html)
    assert 'role="status" aria-live="polite"' in html
    assert Path(STATIC_DIR / "index.html").is_file()


def test_capture_is_its_page_with_settings_filled_in(client: TestClient) -> None:
    response = client.get("/capture")
    assert response.status_code == 200
    html = response.text
    assert '<meta name="carpose-max-upload-bytes" content="1234567">' in html
    assert "__" not in html
    version = re.search(r'/static/capture\.js\?v=([0-9a-f]{12})"', html)
    assert version and f"/static/capture.css?v={version.group(1)}" in html
    assert 'capture="environment"' in html and 'accept="image/*"' in html  # the camera-app fallback
    assert response.headers["permissions-policy"] == "camera=(self)"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    for name in ("capture.js", "capture.css"):
        assert client.get(f"/static/{name}").status_code == 200
