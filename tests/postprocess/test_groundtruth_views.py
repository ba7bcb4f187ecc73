"""estimate_pose on the ground-truth annotations of the Car Parts TEST split: a sanity check and a report.

Run with `-s` to see the per-view table. The ground truth has no azimuth labels; what we can assert is that
nothing crashes, that most images get a view, and that images with only front (back) parts come out front
(back)-ish.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from models.groundtruth import car_instance, split_coco_instances
from service.postprocess import VIEWS, estimate_pose

FRONT_ONLY = {"front_bumper", "front_glass", "hood", "front_left_light", "front_right_light"}
BACK_ONLY = {"back_bumper", "back_glass", "trunk", "tailgate", "back_left_light", "back_right_light"}


@pytest.fixture(scope="module")
def test_split(car_parts_dir: Path) -> tuple[dict, dict]:
    coco = json.loads((car_parts_dir / "testset" / "annotations.json").read_text())
    return coco, split_coco_instances(coco)


def test_ground_truth_test_split_views(test_split: tuple[dict, dict]) -> None:
    coco, instances = test_split
    sizes = {int(im["id"]): (int(im["width"]), int(im["height"])) for im in coco["images"]}
    views: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    front_only: Counter[str] = Counter()
    back_only: Counter[str] = Counter()
    for image_id, parts in sorted(instances.items()):
        car = car_instance(parts)
        detections = [p.as_detection() for p in parts] + ([car.as_detection()] if car else [])
        pose = estimate_pose(detections, sizes[image_id])
        views[pose.view or "-"] += 1
        reasons[pose.reason or "-"] += 1
        labels = {p.label for p in parts} - {"wheel"}
        if labels and labels <= FRONT_ONLY:
            front_only[pose.coarse_view or "-"] += 1
        if labels and labels <= BACK_ONLY:
            back_only[pose.coarse_view or "-"] += 1

    total = sum(views.values())
    lines = [f"\nestimate_pose on ground-truth test split ({total} images)", f"{'view':<12} {'count':>5}"]
    lines += [f"{v:<12} {views[v]:>5}" for v in (*VIEWS, "-")]
    lines.append(f"reasons: {dict(reasons)}; front-only images: {dict(front_only)}; back-only: {dict(back_only)}")
    print("\n".join(lines))

    assert total == len(coco["images"])
    assert views["-"] <= 0.1 * total, reasons
    assert front_only["front"] >= 0.8 * sum(front_only.values())
    assert back_only["back"] >= 0.8 * sum(back_only.values())
    assert sum(views[v] for v in VIEWS) > 0.9 * total
    assert len([v for v in VIEWS if views[v] > 0]) >= 6  # the split has front, back and side photos
