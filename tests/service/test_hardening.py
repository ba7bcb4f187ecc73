"""Small hardening items: documented codes for malformed bodies, nosniff everywhere, HEAD /healthz, no server paths."""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.exceptions import PoseError
from service.imaging import WorkingSize, decode_upload
from service.postprocess.vocabulary import VIEWS
from tests.service.helpers import assert_error
from tests.service.images import (
    avif_bytes,
    avif_that_breaks_the_decoder,
    exif_jpeg,
    jpeg_bytes,
    png_bomb,
    with_ispe,
)


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


# --- Issue 18: inputs that used to reach a 500, each on a generated file --------------------------------------

ORIENTATION_6 = (0x0112, "SHORT", 1, struct.pack("<H", 6))
# A fine photo with Orientation 6 and one other tag stored with the wrong type: Pillow's exif_transpose failed
# while rewriting the EXIF (AttributeError, struct.error, TypeError). The photo must still be rotated.
BROKEN_OTHER_TAG = {
    "make_as_float": (0x010F, "FLOAT", 1, struct.pack("<f", 1.5)),
    "make_as_rational": (0x010F, "RATIONAL", 1, struct.pack("<II", 1, 2)),
    "image_width_as_negative_sshort": (0x0100, "SSHORT", 1, struct.pack("<h", -5)),
    "x_resolution_as_ascii": (0x011A, "ASCII", 4, b"abc\x00"),
}
# An orientation that is not a SHORT is ignored: the photo is read as stored (it used to be a 500 or a 400).
BROKEN_ORIENTATION = {
    "float_infinity": (0x0112, "FLOAT", 1, struct.pack("<f", float("inf"))),
    "double_infinity": (0x0112, "DOUBLE", 1, struct.pack("<d", float("inf"))),
    "ascii": (0x0112, "ASCII", 4, b"abc\x00"),
    "undefined": (0x0112, "UNDEFINED", 2, b"\x06\x00"),
}
WORKING = WorkingSize(800, 1333)


@pytest.mark.parametrize("entry", BROKEN_OTHER_TAG.values(), ids=list(BROKEN_OTHER_TAG))
def test_a_wrongly_typed_exif_tag_never_costs_the_rotation(entry: tuple[int, str, int, bytes]) -> None:
    image = decode_upload(exif_jpeg([ORIENTATION_6, entry]), 10**7, 10**8, WORKING)
    assert image.exif_rotated and (image.width, image.height) == (200, 300)


@pytest.mark.parametrize("entry", BROKEN_ORIENTATION.values(), ids=list(BROKEN_ORIENTATION))
def test_a_broken_orientation_is_ignored(entry: tuple[int, str, int, bytes]) -> None:
    image = decode_upload(exif_jpeg([entry]), 10**7, 10**8, WORKING)
    assert not image.exif_rotated and (image.width, image.height) == (300, 200)


def test_an_avif_that_breaks_its_decoder_is_invalid_image() -> None:
    with pytest.raises(PoseError) as caught:
        decode_upload(avif_that_breaks_the_decoder(), 10**7, 10**8, WORKING)
    assert caught.value.code == "invalid_image" and "AVIF" in caught.value.message


@pytest.mark.parametrize(("width", "height"), [(6000, 6500), (257, 192), (256, 193)])
def test_an_avif_whose_header_claims_more_than_its_stream_holds_is_invalid_image(width: int, height: int) -> None:
    """libavif would upscale the 256x192 frame to the claimed size and report that size (issue 18)."""
    with pytest.raises(PoseError) as caught:
        decode_upload(with_ispe(avif_bytes(256, 192), width, height), 10**7, 10**8, WORKING)
    assert caught.value.code == "invalid_image"
    assert f"{width}x{height}" in caught.value.message and "256x192" in caught.value.message


def test_an_avif_whose_header_is_true_decodes_at_its_size() -> None:
    image = decode_upload(with_ispe(avif_bytes(256, 192), 256, 192), 10**7, 10**8, WORKING)
    assert image.reported_size == (256, 192) and image.format == "AVIF"


def test_an_avif_size_lie_is_400_over_http(client: TestClient) -> None:
    response = client.post("/pose", files={"image": ("lie.avif", with_ispe(avif_bytes(), 6000, 6500))})
    assert_error(response, 400, "invalid_image")


def test_an_image_over_pillows_own_bomb_limit_gets_our_message() -> None:
    with pytest.raises(PoseError) as caught:  # 20001 x 20001 > 400 MP: Pillow refuses it while opening
        decode_upload(png_bomb(20_001, 20_001), 10**7, 40_000_000, WORKING)
    assert caught.value.code == "image_too_large"
    assert "40000000 pixels" in caught.value.message and "DecompressionBomb" not in caught.value.message


HOSTILE_JSON = {
    "nested_lists": b"[" * 100_000,
    "nested_objects": b'{"a":' * 100_000,
    "long_integer": b'{"image": "", "n": ' + b"7" * 4301 + b"}",
    "long_negative_integer": b"-" + b"7" * 5000,
}


def chunked(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), 65536):
        yield body[start : start + 65536]


@pytest.fixture(scope="module")
def sagemaker_client(make_client: Callable[..., Any]) -> Iterator[TestClient]:
    with make_client(sagemaker=True) as client:
        yield client


@pytest.mark.parametrize("path", ["/pose", "/invocations"])
@pytest.mark.parametrize("body", HOSTILE_JSON.values(), ids=list(HOSTILE_JSON))
def test_hostile_json_is_400_invalid_request(sagemaker_client: TestClient, path: str, body: bytes) -> None:
    headers = {"content-type": "application/json"}
    assert_error(sagemaker_client.post(path, content=body, headers=headers), 400, "invalid_request")
    # The same body without a Content-Length (chunked transfer encoding).
    assert_error(sagemaker_client.post(path, content=chunked(body), headers=headers), 400, "invalid_request")


def test_one_bad_photo_fails_only_its_slot(client: TestClient) -> None:
    photos = [
        jpeg_bytes(),
        exif_jpeg([ORIENTATION_6, BROKEN_OTHER_TAG["make_as_float"]]),
        avif_that_breaks_the_decoder(),
        jpeg_bytes(seed=1),
    ]
    files = [("images", (f"{i}.img", data, "application/octet-stream")) for i, data in enumerate(photos)]
    response = client.post("/coverage", files=files)
    assert response.status_code == 200, response.text
    slots = response.json()["photos"]
    assert [slot["error"] is None for slot in slots] == [True, True, False, True]
    assert slots[1]["pose"]["image"]["width"] == 200  # rotated: the EXIF elsewhere was broken, not the photo
    assert slots[2]["error"]["code"] == "invalid_image"


@pytest.mark.parametrize("required", ["", ",,", " , "])
def test_a_required_list_naming_no_view_means_all_eight(client: TestClient, required: str) -> None:
    files = [("images", ("a.jpg", jpeg_bytes(), "image/jpeg"))]
    body = client.post("/coverage", params={"required": required}, files=files).json()
    assert body["required"] == list(VIEWS) and body["complete"] is False


def test_the_coverage_413_names_the_set_limit(make_client: Callable[..., Any]) -> None:
    with make_client(coverage_max_total_bytes=100_000) as client:
        files = [("images", (f"{i}.jpg", b"\xff\xd8\xff" + bytes(60_000), "image/jpeg")) for i in range(3)]
        response = client.post("/coverage", files=files)
    body = assert_error(response, 413, "upload_too_large")
    assert "100000 bytes in all" in body["error"]["message"]
    assert response.headers["connection"] == "close"


def test_refusals_before_the_body_close_the_connection(make_client: Callable[..., Any]) -> None:
    with make_client(api_keys=["k1"], max_upload_bytes=1000) as client:
        unauthorized = client.post("/pose", files={"image": ("a.jpg", jpeg_bytes(), "image/jpeg")})
        too_large = client.post(
            "/pose", files={"image": ("a.jpg", bytes(200_000), "image/jpeg")}, headers={"x-api-key": "k1"}
        )
    assert_error(unauthorized, 401, "unauthorized")
    assert_error(too_large, 413, "upload_too_large")
    assert unauthorized.headers["connection"] == too_large.headers["connection"] == "close"


def test_the_model_card_names_no_machine_path(client: TestClient) -> None:
    text = client.get("/model").text
    assert "/work/" not in text and "/home/" not in text and "/tmp/" not in text


def test_the_openapi_set_needs_a_photo_and_the_json_example_is_base64(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    form = schema["paths"]["/coverage"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["images"]["minItems"] == 1
    example = schema["paths"]["/pose"]["post"]["requestBody"]["content"]["application/json"]["example"]["image"]
    assert base64.b64decode(example.split(",", 1)[1], validate=True).startswith(b"\xff\xd8\xff")


def test_a_preflight_from_an_unlisted_origin_is_405_with_keys_on(make_client: Callable[..., Any]) -> None:
    with make_client(api_keys=["k1"], cors_origins=["https://shop.example"]) as client:
        response = client.options(
            "/pose", headers={"origin": "https://evil.example", "access-control-request-method": "POST"}
        )
    assert_error(response, 405, "method_not_allowed")
    assert "access-control-allow-origin" not in response.headers
