"""The SageMaker serving contract (GET /ping, POST /invocations) through real uvicorn, and the image's `serve`."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.uvicorn_server import MALLOC_ENV, Server, free_port, server_env, uvicorn_server
from service.api.main import create_app
from service.api.routers.sagemaker import CUSTOM_ATTRIBUTES_HEADER
from service.cli import build_parser
from service.sagemaker import find_model_dir
from tests.deploy import helpers as h
from tests.service.helpers import RESPONSE_FIELDS, assert_error, running_client, tiny_settings
from tests.service.images import jpeg_bytes, png_bytes, webp_bytes

LIMIT = 100_000
SAGEMAKER_ROUTES = {"/ping", "/invocations"}


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = server_env(tiny_model_dir, sagemaker="true", max_upload_bytes=str(LIMIT))
    with uvicorn_server(env, tmp_path_factory.mktemp("sagemaker") / "uvicorn.log") as running:
        yield running


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        yield client


def invoke(http: httpx.Client, body: bytes, content_type: str | None, **headers: str) -> httpx.Response:
    if content_type is not None:
        headers["Content-Type"] = content_type
    return http.post("/invocations", content=body, headers=headers)


def test_ping_answers_200_once_ready(http: httpx.Client) -> None:
    response = http.get("/ping")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_invocations_answers_what_post_pose_answers(http: httpx.Client) -> None:
    image = jpeg_bytes(320, 240, seed=3)
    invoked = invoke(http, image, "image/jpeg")
    assert invoked.status_code == 200, invoked.text
    assert invoked.headers["content-type"] == "application/json"
    posed = http.post("/pose", files={"image": ("car.jpg", image, "image/jpeg")})
    assert posed.status_code == 200, posed.text
    a, b = invoked.json(), posed.json()
    assert set(a) >= RESPONSE_FIELDS
    a.pop("timings_ms"), b.pop("timings_ms")
    assert a == b
    assert a["image"] == {"width": 320, "height": 240}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (png_bytes(200, 150), "image/png"),
        (webp_bytes(200, 150), "image/webp"),
        (png_bytes(200, 150), "application/x-image"),
        (png_bytes(200, 150), "application/octet-stream"),
        (png_bytes(200, 150), "image/jpeg; charset=binary"),  # the bytes decide which image type it is
    ],
)
def test_invocations_takes_each_image_type(http: httpx.Client, body: bytes, content_type: str) -> None:
    response = invoke(http, body, content_type)
    assert response.status_code == 200, response.text
    assert response.json()["image"] == {"width": 200, "height": 150}


def test_invocations_takes_the_json_base64_shape(http: httpx.Client) -> None:
    image = jpeg_bytes(320, 240, seed=3)
    as_json = http.post("/invocations", json={"image": base64.b64encode(image).decode()})
    assert as_json.status_code == 200, as_json.text
    raw = invoke(http, image, "image/jpeg")
    a, b = as_json.json(), raw.json()
    a.pop("timings_ms"), b.pop("timings_ms")
    assert a == b
    data_url = "data:image/jpeg;base64," + base64.b64encode(image).decode()
    assert http.post("/invocations", json={"image": data_url}).status_code == 200
    assert_error(http.post("/invocations", json={"image": "not base64!"}), 400, "invalid_image")
    assert_error(http.post("/invocations", json={"picture": "x"}), 422, "validation_error")


@pytest.mark.parametrize("content_type", ["text/csv", "image/gif", None])
def test_invocations_refuses_a_body_that_is_not_declared_an_image(http: httpx.Client, content_type: str | None) -> None:
    assert_error(invoke(http, jpeg_bytes(64, 64), content_type), 415, "unsupported_media_type")


def test_invocations_errors_are_those_of_post_pose(http: httpx.Client) -> None:
    assert_error(invoke(http, b"", "image/jpeg"), 400, "invalid_image")
    assert_error(invoke(http, jpeg_bytes(320, 240)[:300], "image/jpeg"), 400, "invalid_image")
    assert_error(invoke(http, b"not an image at all" * 10, "image/jpeg"), 415, "unsupported_media_type")
    too_large = jpeg_bytes(64, 64) + b"\0" * LIMIT
    assert_error(invoke(http, too_large, "image/jpeg"), 413, "upload_too_large")
    assert_error(http.get("/invocations"), 405, "method_not_allowed")


def test_render_through_custom_attributes(http: httpx.Client) -> None:
    plain = invoke(http, jpeg_bytes(200, 150), "image/jpeg")
    assert plain.json()["rendered_image"] is None
    headers = {CUSTOM_ATTRIBUTES_HEADER: "trace=abc, render=true"}
    rendered = invoke(http, jpeg_bytes(200, 150), "image/jpeg", **headers)
    assert rendered.status_code == 200, rendered.text
    assert rendered.json()["rendered_image"].startswith("data:image/jpeg;base64,")


def test_the_routes_exist_only_when_the_setting_says_so(tiny_model_dir: Path) -> None:
    def paths(sagemaker: bool) -> set[str]:
        app = create_app(tiny_settings(tiny_model_dir, sagemaker=sagemaker))
        return set(app.openapi()["paths"])

    assert not SAGEMAKER_ROUTES & paths(False)
    assert paths(True) >= SAGEMAKER_ROUTES | {"/pose", "/readyz"}


def test_ping_is_503_with_the_reason_while_the_model_is_unavailable(tmp_path: Path) -> None:
    settings = tiny_settings(tmp_path / "missing-model", sagemaker=True)
    with running_client(settings, wait_ready=False) as client:
        deadline = time.monotonic() + 60
        while True:
            response = client.get("/ping")
            assert response.status_code == 503
            if response.json()["error"]["code"] == "model_unavailable":
                break
            assert_error(response, 503, "model_loading")
            assert time.monotonic() < deadline, "the missing model never failed"
            time.sleep(0.05)
        assert_error(response, 503, "model_unavailable")


# ------------------------------------------------------------------------------------- /opt/ml/model lookup


def fake_model(directory: Path) -> Path:
    directory.mkdir(parents=True)
    for name in ("config.yaml", "model_final.pth"):
        (directory / name).write_text("x")
    return directory


def test_find_model_dir(tmp_path: Path) -> None:
    assert find_model_dir(tmp_path / "absent") is None
    assert find_model_dir(tmp_path) is None  # empty: SageMaker without ModelDataUrl
    nested = fake_model(tmp_path / "nested" / "carparts_r50_fpn")
    assert find_model_dir(tmp_path / "nested") == nested  # `tar -C models -czf model.tar.gz carparts_r50_fpn`
    flat = fake_model(tmp_path / "flat")
    assert find_model_dir(flat) == flat  # `tar -C models/carparts_r50_fpn -czf model.tar.gz .`
    fake_model(tmp_path / "nested" / "another")
    assert find_model_dir(tmp_path / "nested") is None  # two models: no guessing


# ----------------------------------------------------------------------------------- the image's entrypoint


def test_carpose_serve_parses_the_sagemaker_flags() -> None:
    args = build_parser().parse_args(["serve", "--sagemaker", "--port", "9090"])
    assert args.sagemaker and args.port == 9090 and args.model_root == "/opt/ml/model"


def test_every_image_installs_the_launcher_as_serve() -> None:
    stages = {stage.name: stage for stage in h.dockerfile_stages() if stage.name}

    def copies_into(stage: h.Stage) -> list[tuple[list[str], str]]:
        """(build-context sources, destination) of every COPY that lands in the stage, through COPY --from of
        this file's stages (the serving images take their files from a shared stage)."""
        found = []
        for ins in (i for i in stage.instructions if i.keyword == "COPY"):
            sources, flags = h.copy_sources(ins)
            destination = ins.args.split()[-1]
            origin = stages.get(flags.get("from", ""))
            if origin is None:
                found.append((sources, destination))
                continue
            for inner_sources, inner_destination in copies_into(origin):
                if any(inner_destination.startswith(source.rstrip("/")) for source in sources):
                    found.append((inner_sources, inner_destination))
        return found

    for name in ("gpu", "cpu"):
        copies = copies_into(stages[name])
        serve = [sources for sources, destination in copies if destination == "/opt/venv/bin/serve"]
        assert serve == [["docker/carpose"]], f"{name}: `docker run IMAGE serve` would find no `serve`"


def test_serve_entrypoint_starts_the_contract_on_its_port_with_the_model_from_the_model_root(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """What `docker run IMAGE serve` runs: docker/carpose under the name `serve`."""
    serve = tmp_path / "bin" / "serve"
    serve.parent.mkdir()
    shutil.copy(h.REPO_ROOT / "docker" / "carpose", serve)
    model_root = tmp_path / "opt-ml-model"
    shutil.copytree(tiny_model_dir, model_root / "unpacked-by-sagemaker")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSE_")}
    env.update(MALLOC_ENV, PYTHONPATH=str(h.REPO_ROOT), POSE_DEVICE="cpu", POSE_TORCH_THREADS="1")
    command = [sys.executable, str(serve), "--host", "127.0.0.1", "--port", str(port), "--model-root", str(model_root)]
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        with httpx.Client(base_url=url, timeout=5.0) as client:
            while True:
                assert process.poll() is None, log.read_text()[-3000:]
                try:
                    if client.get("/ping").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.1)
            # /model names the directory (not its full path): the one under --model-root, not the default.
            assert Path(client.get("/model").json()["model_dir"]).name == "unpacked-by-sagemaker"
            response = client.post("/invocations", content=jpeg_bytes(), headers={"Content-Type": "image/jpeg"})
            assert response.status_code == 200, response.text
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal: exit status -SIGTERM is the clean end.
        assert process.wait(30) in (0, -signal.SIGTERM), log.read_text()[-3000:]
        assert "Application shutdown complete" in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(15)
