"""Every error code the code can answer is in ERROR_CODES, docs/api.md's table and the OpenAPI document."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.errors import _HTTP_CODES, ERROR_CODES
from service.api.main import create_app
from service.api.openapi import POSE_CODES, REKOGNITION_CODES
from service.settings import REPO_ROOT
from tests.service.helpers import tiny_settings

# The core names a code only, its status is in the table: PoseError("upload_too_large", ...),
# UpstreamError("upstream_timeout", ...). The HTTP edge's own answers carry both:
# send_error(send, 408, "request_timeout", ...), error_response(request, 500, "internal_error", ...).
RAISED = re.compile(r"\b(?:PoseError|UpstreamError)\(\s*\"([a-z]+(?:_[a-z]+)*)\"")
ANSWERED = re.compile(r"\b([1-5]\d\d),\s*\"([a-z]+(?:_[a-z]+)*)\"(?!\s*:)")


def emitted_codes() -> dict[str, int | None]:
    """Every code the source answers with, and the status written beside it at the edge (None in the core)."""
    found: dict[str, int | None] = {}
    for path in (REPO_ROOT / "service").rglob("*.py"):
        if path.name == "errors.py" or "postprocess" in path.parts:
            continue  # the registry itself, and the catch-all handlers checked below
        text = path.read_text()
        for code in RAISED.findall(text):
            found.setdefault(code, None)
        for status, code in ANSWERED.findall(text):
            found[code] = int(status)
    return found


def test_every_code_in_the_source_is_registered_with_its_status() -> None:
    found = emitted_codes()
    assert len(found) >= 20, found  # the patterns still match how the code raises errors
    for code, status in found.items():
        assert code in ERROR_CODES, f"{code} is answered but not in service.api.errors.ERROR_CODES"
        assert status is None or ERROR_CODES[code].status == status, code


# The runtime core: what `Runtime.predict` and the gates run. The HTTP edge (errors.py, middleware, routers,
# dependencies, main) may pair statuses with codes; these modules name codes only.
CORE = ["exceptions.py", "imaging.py", "gate.py", "runtime.py", "quality.py", "render.py", "backends", "postprocess"]


def test_the_core_never_writes_an_http_status() -> None:
    paths = [p for name in CORE for p in ([REPO_ROOT / "service" / name] if name.endswith(".py") else [])]
    paths += [p for name in CORE if not name.endswith(".py") for p in (REPO_ROOT / "service" / name).rglob("*.py")]
    assert len(paths) > len(CORE)
    for path in paths:
        assert not ANSWERED.findall(path.read_text()), path


def test_every_registered_code_is_answered_somewhere() -> None:
    handlers = set(_HTTP_CODES.values()) | {"validation_error", "internal_error"}  # errors.py's own handlers
    assert set(ERROR_CODES) == set(emitted_codes()) | handlers


def documented_error_table() -> dict[str, int]:
    text = (REPO_ROOT / "docs" / "api.md").read_text()
    table = text[text.index("Errors are always") :]
    table = table[: table.index("\n\n", table.index("| status | code"))]
    rows = re.findall(r"^\| (\d{3}) \| `([a-z_]+)` \|", table, flags=re.M)
    return {code: int(status) for status, code in rows}


def test_the_api_page_lists_every_code_with_its_status() -> None:
    assert documented_error_table() == {code: e.status for code, e in ERROR_CODES.items()}


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict:
    app = create_app(tiny_settings(Path(tmp_path_factory.mktemp("no_model"))))
    return TestClient(app).get("/openapi.json").json()


def test_the_openapi_description_lists_every_code(openapi: dict) -> None:
    description = openapi["info"]["description"]
    for code, e in ERROR_CODES.items():
        assert f"| {e.status} | `{code}` |" in description


@pytest.mark.parametrize(("path", "codes"), [("/pose", POSE_CODES), ("/pose/rekognition", REKOGNITION_CODES)])
def test_each_pose_route_documents_its_codes_under_their_status(openapi: dict, path: str, codes: list[str]) -> None:
    responses = openapi["paths"][path]["post"]["responses"]
    for code in codes:
        status = str(ERROR_CODES[code].status)
        assert f"`{code}`" in responses[status]["description"], (path, code)
        assert responses[status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
