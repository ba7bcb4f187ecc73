"""Small hardening items: documented codes for malformed bodies, nosniff everywhere, HEAD /healthz, no server paths."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.service.helpers import assert_error
from tests.service.images import jpeg_bytes


def test_unterminated_multipart_is_a_missing_field(client: TestClient) -> None:
    # The parser keeps no part that never ends: the answer is the documented 422, not an undocumented code.
    response = client.post(
        "/pose",
        content=b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n\xff\xd8',
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert_error(response, 422, "validation_error")


def test_multipart_without_a_boundary_is_400_invalid_request(client: TestClient) -> None:
    response = client.post("/pose", content=b"garbage", headers={"content-type": "multipart/form-data"})
    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize("path", ["/healthz", "/docs", "/openapi.json", "/static/app.js", "/metrics", "/nope", "/"])
def test_every_response_says_nosniff(client: TestClient, path: str) -> None:
    assert client.get(path).headers["x-content-type-options"] == "nosniff"


def test_pose_answers_and_errors_say_nosniff(client: TestClient) -> None:
    ok = client.post("/pose", files={"image": ("a.jpg", jpeg_bytes(), "image/jpeg")})
    bad = client.post("/pose", files={"image": ("a.jpg", b"nope", "image/jpeg")})
    assert ok.status_code == 200 and bad.status_code == 415
    assert ok.headers["x-content-type-options"] == bad.headers["x-content-type-options"] == "nosniff"


def test_head_healthz(client: TestClient) -> None:
    response = client.head("/healthz")
    assert response.status_code == 200 and response.content == b""


def test_model_card_names_the_directory_not_the_servers_path(client: TestClient) -> None:
    body = client.get("/model").json()
    assert "/" not in body["model_dir"] and body["model_dir"]


def test_rekognition_is_not_ready_without_credentials(make_client, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with make_client(rekognition_enabled=True) as client:
        backends = {b["name"]: b for b in client.get("/backends").json()["backends"]}
    assert backends["rekognition"]["enabled"] is True
    assert backends["rekognition"]["ready"] is False
    assert "credentials" in backends["rekognition"]["hint"]
