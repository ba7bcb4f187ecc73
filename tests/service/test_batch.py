"""`carpose batch` on a real local Ray (2 CPUs, a small object store) with real Detectron2 actors: a manifest
with bad lines, a folder, an s3:// prefix on a local S3 stand-in (moto's server on 127.0.0.1, no network), and
the rows against POST /pose."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.batch import LOCAL_OBJECT_STORE_BYTES, list_sources
from service.cli import main as carpose_runtime
from service.settings import Settings
from tests.service.helpers import RESPONSE_FIELDS, running_client

ray = pytest.importorskip("ray", reason="the `batch` extra (ray[data]) is not installed")
boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server", reason="moto[server] (dev extra) is not installed")

PHOTOS = ["car10.jpg", "car118.jpg", "car122.jpg"]
BUCKET = "carpose-photos"
ROW_FIELDS = {"file"} | RESPONSE_FIELDS - {"rendered_image"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 on 127.0.0.1, with dummy credentials in the environment before Ray starts (its workers
    inherit them)."""
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            env.setenv(name, value)
        env.delenv("AWS_PROFILE", raising=False)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


@pytest.fixture(scope="module")
def local_ray(s3_endpoint: str) -> Iterator[None]:
    """One local Ray for the module; `carpose batch` uses a running Ray and leaves it running."""
    ray.init(num_cpus=2, object_store_memory=LOCAL_OBJECT_STORE_BYTES, include_dashboard=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def photos(car_parts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        shutil.copy(car_parts_dir / "testset" / "JPEGImages" / name, folder / name)
    (folder / "notes.txt").write_text("not a photo: a folder source skips it")
    return folder


def read_jsonl(path: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    by_file = {row["file"]: row for row in rows}
    assert len(by_file) == len(rows), "one row per photo"
    return by_file


def test_a_manifest_gives_post_pose_fields_and_error_rows_and_goes_on(
    local_ray: None,
    photos: Path,
    default_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "truncated.jpg").write_bytes((photos / PHOTOS[0]).read_bytes()[:300])
    (tmp_path / "page.pdf").write_bytes(b"%PDF-1.7 not an image")
    manifest = tmp_path / "manifest.txt"
    lines = [str(photos / PHOTOS[0]), "# a comment", "", "missing.jpg", "truncated.jpg", "page.pdf"]
    lines += [str(photos / name) for name in PHOTOS[1:]]
    manifest.write_text("\n".join(lines) + "\n")
    output = tmp_path / "results.jsonl"

    argv = ["batch", str(manifest), "--output", str(output), "--model-dir", str(default_model_dir)]
    monkeypatch.setenv("CARPOSE_PROGRESS", "1")  # the bar although stderr is not a terminal here
    assert carpose_runtime(argv) == 0  # bad lines are rows, not a failed batch

    rows = read_jsonl(output)
    assert len(rows) == 6
    assert rows[str(tmp_path / "missing.jpg")]["error"]["code"] == "unreadable"
    assert rows[str(tmp_path / "truncated.jpg")]["error"]["code"] == "invalid_image"
    assert rows[str(tmp_path / "page.pdf")]["error"]["code"] == "unsupported_media_type"
    err = capsys.readouterr().err
    assert "6/6" in err and "3 error rows" in err  # the progress bar and the summary

    with running_client(Settings(model_dir=default_model_dir, device="cpu")) as client:
        for name in PHOTOS:
            row = rows[str(photos / name)]
            assert set(row) == ROW_FIELDS
            data = (photos / name).read_bytes()
            http = client.post("/pose", files={"image": (name, data, "image/jpeg")}).json()
            for key in ROW_FIELDS - {"file", "timings_ms"}:
                assert row[key] == http[key], (name, key)
            assert set(row["timings_ms"]) == set(http["timings_ms"])
    assert any(rows[str(photos / name)]["view"] for name in PHOTOS)  # the real model posed real cars


def test_an_s3_prefix_on_a_local_stand_in_into_parquet(
    local_ray: None, s3_endpoint: str, photos: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    for name in PHOTOS[:2]:
        s3.put_object(Bucket=BUCKET, Key=f"listing-7/{name}", Body=(photos / name).read_bytes())
    s3.put_object(Bucket=BUCKET, Key="listing-7/broken.jpg", Body=b"\xff\xd8\xff\xe0 truncated")
    s3.put_object(Bucket=BUCKET, Key="listing-7/notes.txt", Body=b"skipped: not an image name")
    s3.put_object(Bucket=BUCKET, Key="listing-8/car.jpg", Body=(photos / PHOTOS[2]).read_bytes())
    prefix = f"s3://{BUCKET}/listing-7/"
    expected = [f"{prefix}{name}" for name in ["broken.jpg", *PHOTOS[:2]]]
    assert list_sources(prefix, s3_endpoint) == expected
    output = tmp_path / "results.parquet"

    argv = ["batch", prefix, "--output", str(output), "--model-dir", str(tiny_model_dir)]
    assert carpose_runtime([*argv, "--s3-endpoint-url", s3_endpoint, "--quiet"]) == 0

    rows = {row["file"]: row for row in pq.read_table(output).to_pylist()}
    assert sorted(rows) == expected
    assert rows[expected[0]]["error"] == {"code": "invalid_image", "message": rows[expected[0]]["error"]["message"]}
    for uri in expected[1:]:
        assert rows[uri]["error"] is None
        assert rows[uri]["image"]["width"] > 0 and rows[uri]["model"]["name"]
        assert set(rows[uri]) == ROW_FIELDS | {"error"}  # one schema: every row has every column


def test_a_folder_and_a_missing_s3_object(
    local_ray: None, s3_endpoint: str, photos: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket=f"{BUCKET}-2")
    manifest = tmp_path / "manifest.txt"
    manifest.write_text(f"s3://{BUCKET}-2/gone.jpg\n{photos / PHOTOS[0]}\n")
    output = tmp_path / "folder.jsonl"
    model = ["--model-dir", str(tiny_model_dir), "--s3-endpoint-url", s3_endpoint, "--quiet"]

    assert carpose_runtime(["batch", str(photos), "--output", str(output), "--actors", "1", *model]) == 0
    assert sorted(read_jsonl(output)) == [str(photos / name) for name in PHOTOS]  # notes.txt is not a photo

    assert carpose_runtime(["batch", str(manifest), "--output", str(output), *model]) == 0
    rows = read_jsonl(output)
    assert rows[f"s3://{BUCKET}-2/gone.jpg"]["error"]["code"] == "unreadable"
    assert "error" not in rows[str(photos / PHOTOS[0])]


def test_an_empty_source_is_refused_before_ray_starts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "manifest.txt").write_text("# nothing yet\n")
    argv = ["batch", str(tmp_path / "manifest.txt"), "--output", str(tmp_path / "out.jsonl")]
    assert carpose_runtime(argv) == 2
    assert "no photos" in capsys.readouterr().err
