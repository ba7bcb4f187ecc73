"""The synchronous runtime (`service.runtime`) and `carpose predict`: the same answers as POST /pose, no HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.cli import main as carpose_runtime
from service.exceptions import PoseError
from service.runtime import Runtime
from service.settings import Settings
from tests.service.images import car_like_array, encode, jpeg_bytes


@pytest.fixture(scope="module")
def runtime(client: TestClient) -> Runtime:
    return Runtime.from_settings(client.app.state.model.backend, client.app.state.settings)


def test_predict_on_bytes_gives_the_pose_post_pose_gives(client: TestClient, runtime: Runtime) -> None:
    data = encode(car_like_array(1280, 960, seed=3))  # larger than the model input: decoded reduced, both ways
    http = client.post("/pose", files={"image": ("car.jpg", data, "image/jpeg")}).json()
    result = runtime.predict(data)
    assert (result.image.width, result.image.height) != result.image.reported_size  # it did decode reduced
    assert result.pose.cars_detected == http["cars_detected"]
    assert result.pose.reason == http["reason"]
    assert result.pose.view == http["view"]
    assert len(result.pose.parts) == len(http["parts"]) and len(result.pose.wheels) == len(http["wheels"])
    assert set(result.timings_ms) == {"decode", "inference", "postprocess", "total"}


def test_predict_refuses_bad_input_with_a_stable_code_and_no_status(runtime: Runtime) -> None:
    with pytest.raises(PoseError) as refused:
        runtime.predict(b"GIF89a not a supported image")
    assert refused.value.code == "unsupported_media_type"
    assert not hasattr(refused.value, "status")  # statuses belong to the HTTP edge (service.api.errors)
    with pytest.raises(PoseError) as refused:
        runtime.predict(np.zeros((64, 64), np.uint8))
    assert refused.value.code == "invalid_image"


def test_predict_on_an_array_uses_its_pixels_as_given(runtime: Runtime) -> None:
    rgb = car_like_array(640, 480, seed=1)
    result = runtime.predict(rgb)
    assert result.image.rgb.shape == rgb.shape and result.image.reported_size == (640, 480)
    assert result.detections == runtime.detect(result.image)


def test_carpose_predict_prints_the_post_pose_json_and_error_codes(
    client: TestClient, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "car.jpg"
    good.write_bytes(jpeg_bytes(640, 480, seed=2))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    settings = Settings(model_dir=tiny_model_dir, device="cpu")
    code = carpose_runtime(["predict", "--model-dir", str(settings.model_dir), "--device", "cpu", str(tmp_path)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1  # one file failed
    by_file = {Path(line["file"]).name: line for line in lines}
    assert by_file["broken.png"]["error"]["code"] == "invalid_image"
    http = client.post("/pose", files={"image": ("car.jpg", good.read_bytes(), "image/jpeg")}).json()
    cli = by_file["car.jpg"]
    for key in ("view", "azimuth_deg", "cars_detected", "car", "wheels", "parts", "image", "backend", "model"):
        assert cli[key] == http[key], key
