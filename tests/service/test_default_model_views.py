"""The embedded default model through POST /pose vs the pose the shared postprocessing derives from ground truth.

Skips until models/carparts_mnv2_fpn/ exists and without the Car Parts dataset. Run with `-s` for the table.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from models.groundtruth import car_instance, split_coco_instances
from service.postprocess import PoseEstimate, estimate_pose
from service.settings import Settings
from tests.service.helpers import running_client

PER_COARSE_VIEW = {"front": 3, "side": 3, "back": 2}  # 8 images
MIN_COARSE_AGREEMENT = 6
CLEAR_MARGIN_DEG = 15.0  # ground-truth azimuth at least this far from a front/side/back boundary
MIN_GT_CONFIDENCE = 0.7


def ground_truth_pose(parts: list, size: tuple[int, int]) -> PoseEstimate:
    car = car_instance(parts)
    detections = [p.as_detection() for p in parts] + ([car.as_detection()] if car else [])
    return estimate_pose(detections, size)


def boundary_distance(azimuth: float) -> float:
    return min(abs((azimuth - b + 180) % 360 - 180) for b in (45, 135, 225, 315))


def pick_images(car_parts_dir: Path) -> list[tuple[str, PoseEstimate, tuple[int, int]]]:
    """Clear-cut test images, the first few of each coarse view by file name (deterministic)."""
    coco = json.loads((car_parts_dir / "testset" / "annotations.json").read_text())
    instances = split_coco_instances(coco)
    wanted = dict(PER_COARSE_VIEW)
    picked = []
    for image in sorted(coco["images"], key=lambda im: im["file_name"]):
        size = (int(image["width"]), int(image["height"]))
        gt = ground_truth_pose(instances.get(int(image["id"]), []), size)
        if gt.view is None or gt.confidence < MIN_GT_CONFIDENCE or gt.azimuth_deg is None:
            continue
        if boundary_distance(gt.azimuth_deg) < CLEAR_MARGIN_DEG or wanted.get(gt.coarse_view, 0) == 0:
            continue
        if not (car_parts_dir / "testset" / "JPEGImages" / image["file_name"]).is_file():
            continue
        wanted[gt.coarse_view] -= 1
        picked.append((image["file_name"], gt, size))
    assert not any(wanted.values()), f"not enough clear test images: still wanted {wanted}"
    return picked


@pytest.fixture(scope="module")
def default_client(default_model_dir: Path) -> Iterator[TestClient]:
    with running_client(Settings(model_dir=default_model_dir)) as client:
        yield client


def angle_error(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    return abs((a - b + 180) % 360 - 180)


def test_default_model_agrees_with_ground_truth_views(default_client: TestClient, car_parts_dir: Path) -> None:
    rows = []
    coarse_agree = fine_agree = 0
    for file_name, gt, size in pick_images(car_parts_dir):
        data = (car_parts_dir / "testset" / "JPEGImages" / file_name).read_bytes()
        response = default_client.post("/pose", files={"image": (file_name, data, "image/jpeg")})
        assert response.status_code == 200, (file_name, response.text)
        body = response.json()
        assert body["backend"] == "detectron2" and body["model"]["name"]
        assert (body["image"]["width"], body["image"]["height"]) == size, file_name
        coarse_agree += body["coarse_view"] == gt.coarse_view
        fine_agree += body["view"] == gt.view
        err = angle_error(body["azimuth_deg"], gt.azimuth_deg)
        rows.append(
            f"{file_name:<12} {gt.view:<12} {gt.azimuth_deg:>6.0f}  {body['view'] or '-':<12} "
            f"{'-' if body['azimuth_deg'] is None else format(body['azimuth_deg'], '6.0f'):>6} "
            f"{'-' if err is None else format(err, '4.0f'):>5}  {body['reason'] or '-':<14} "
            f"{body['timings_ms']['inference']:>7.0f}"
        )
    header = (
        f"{'image':<12} {'gt view':<12} {'gt az':>6}  {'api view':<12} {'api az':>6} {'|err|':>5}  "
        f"{'reason':<14} {'inf ms':>7}"
    )
    print("\n" + "\n".join([header, *rows]))
    print(f"coarse view agreement {coarse_agree}/{len(rows)}, 8-way view agreement {fine_agree}/{len(rows)}")
    assert coarse_agree >= MIN_COARSE_AGREEMENT
