"""GET / (the upload page) and GET /capture (guided capture on a phone): static files shipped with the service, no
build step.

The page itself is service/api/static/index.html with two placeholders filled in here: the upload limit (so the page
can refuse a too-large photo before sending it) and a content hash of app.js/style.css (so a new release is never
served from a stale browser cache). The other static files are mounted at /static by service.api.main.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
ASSETS = ("app.js", "style.css")
CAPTURE_ASSETS = ("capture.js", "capture.css", "style.css")

# Everything the page needs comes from this server; the annotated image and the preview are data:/blob: URLs.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=8)
def _page_template(static_dir: Path, page: str = "index.html", assets: tuple[str, ...] = ASSETS) -> tuple[str, str]:
    digest = hashlib.sha256()
    for name in assets:
        path = static_dir / name
        digest.update(path.read_bytes() if path.is_file() else b"")
    return (static_dir / page).read_text(encoding="utf-8"), digest.hexdigest()[:12]


def render_index(max_upload_bytes: int, sure_confidence: float, static_dir: Path = STATIC_DIR) -> str:
    """The page; `sure_confidence`: below it an answer is marked "not sure" (the /coverage floor)."""
    html, asset_version = _page_template(static_dir)
    return (
        html.replace("__MAX_UPLOAD_BYTES__", str(int(max_upload_bytes)))
        .replace("__SURE_CONFIDENCE__", repr(float(sure_confidence)))
        .replace("__ASSET_VERSION__", asset_version)
    )


def render_capture(max_upload_bytes: int, static_dir: Path = STATIC_DIR) -> str:
    html, asset_version = _page_template(static_dir, "capture.html", CAPTURE_ASSETS)
    return html.replace("__MAX_UPLOAD_BYTES__", str(int(max_upload_bytes))).replace("__ASSET_VERSION__", asset_version)


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> HTMLResponse:
    settings = request.app.state.settings
    page = render_index(settings.max_upload_bytes, settings.coverage_min_confidence)
    return HTMLResponse(page, headers=PAGE_HEADERS)


# The capture page asks for the rear camera: allowed for this origin only.
CAPTURE_HEADERS = {**PAGE_HEADERS, "Permissions-Policy": "camera=(self)"}


@router.get("/capture", response_class=HTMLResponse)
async def capture(request: Request) -> HTMLResponse:
    settings = request.app.state.settings
    return HTMLResponse(render_capture(settings.max_upload_bytes), headers=CAPTURE_HEADERS)
