"""Evaluate a model directory on a Car Parts split: COCO box/mask AP (overall and per class), wheel AP50,
agreement of predicted views with the views the shared postprocessing derives from the ground truth, and
inference latency."""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from service.backends.detectron import DetectronBackend
from service.console import progress
from service.engines import AUTO
from service.postprocess import VIEWS, PoseConfig, estimate_pose
from service.postprocess.vocabulary import WHEEL_LABEL
from service.runtime import Runtime

from .data import SPLITS
from .groundtruth import car_instance, split_coco_instances
from .view_metrics import NO_VIEW, VIEW_AXIS

COARSE_AXIS = ["front", "back", "side", NO_VIEW]
# Low enough that AP sees the whole precision/recall curve; the pose uses the service threshold.
EVAL_SCORE_THRESHOLD = 0.05


def _gt_coco(coco_json: dict[str, Any], classes: tuple[str, ...]) -> COCO:
    """Ground truth in COCO form with OUR instances: one per wheel, plus the whole car when the model has it."""
    instances = split_coco_instances(coco_json)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image in coco_json["images"]:
        image_id = int(image["id"])
        images.append(
            {"id": image_id, "width": image["width"], "height": image["height"], "file_name": image["file_name"]}
        )
        parts = instances.get(image_id, [])
        car = car_instance(parts)
        for inst in [*parts, *([car] if car is not None and car.label in classes else [])]:
            if inst.label not in classes:
                continue
            rles = mask_utils.frPyObjects([list(p) for p in inst.polygons], image["height"], image["width"])
            rle = mask_utils.merge(rles)
            x0, y0, x1, y1 = inst.box
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": classes.index(inst.label),
                    "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
                    "area": float(mask_utils.area(rle)),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "iscrowd": 0,
                }
            )
    gt = COCO()
    gt.dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": n} for i, n in enumerate(classes)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def _coco_eval(gt: COCO, results: list[dict[str, Any]], iou_type: str, classes: tuple[str, ...]) -> dict[str, Any]:
    if not results:
        return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0, "per_class_AP": {c: 0.0 for c in classes}, "per_class_AP50": {}}
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
        evaluator = COCOeval(gt, dt, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    precision = evaluator.eval["precision"]  # [IoU thresholds, recall, class, area range, max dets]

    def ap(values: np.ndarray) -> float:
        valid = values[values > -1]
        return float(valid.mean() * 100) if valid.size else float("nan")

    per_class = {name: ap(precision[:, :, k, 0, -1]) for k, name in enumerate(classes)}
    per_class50 = {name: ap(precision[0, :, k, 0, -1]) for k, name in enumerate(classes)}
    stats = evaluator.stats
    return {
        "AP": float(stats[0] * 100),
        "AP50": float(stats[1] * 100),
        "AP75": float(stats[2] * 100),
        "per_class_AP": per_class,
        "per_class_AP50": per_class50,
    }


def evaluate(
    model_dir: Path,
    dataset_dir: Path,
    split: str = "test",
    device: str = "auto",
    limit: int | None = None,
    pose_threshold: float = 0.5,
    engine: str = AUTO,
) -> dict[str, Any]:
    split_dir = Path(dataset_dir) / SPLITS[split]
    coco_json = json.loads((split_dir / "annotations.json").read_text())
    if limit:
        coco_json["images"] = coco_json["images"][:limit]
    backend = DetectronBackend(model_dir, device=device, score_threshold=EVAL_SCORE_THRESHOLD, engine=engine)
    classes = backend.classes
    gt = _gt_coco(coco_json, classes)
    instances = split_coco_instances(coco_json)
    pose_config = PoseConfig(score_threshold=pose_threshold)
    runtime = Runtime(backend, pose_config)  # detections at the low AP threshold, the pose at the service's

    box_results: list[dict[str, Any]] = []
    mask_results: list[dict[str, Any]] = []
    latencies: list[float] = []
    view_pairs: list[tuple[str, str]] = []
    coarse_pairs: list[tuple[str, str]] = []
    backend.detect_array(np.zeros((512, 512, 3), np.uint8))  # warm-up, not timed
    for image in progress(coco_json["images"], desc=f"carpose eval ({split})", unit="photo"):
        rgb = np.asarray(Image.open(split_dir / "JPEGImages" / image["file_name"]).convert("RGB"))
        result = runtime.predict(rgb)
        detections = result.detections
        latencies.append(result.timings_ms["inference"] / 1000.0)
        for det in detections:
            x0, y0, x1, y1 = det.box
            common = {"image_id": int(image["id"]), "category_id": classes.index(det.label), "score": det.score}
            box_results.append({**common, "bbox": [x0, y0, x1 - x0, y1 - y0]})
            if det.mask is not None:
                rle = mask_utils.encode(np.asfortranarray(det.mask.astype(np.uint8)))
                mask_results.append({**common, "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()}})
        size = (int(image["width"]), int(image["height"]))
        parts = instances.get(int(image["id"]), [])
        car = car_instance(parts)
        truth = estimate_pose([p.as_detection() for p in [*parts, *([car] if car else [])]], size, pose_config)
        predicted = result.pose
        view_pairs.append((truth.view or NO_VIEW, predicted.view or NO_VIEW))
        coarse_pairs.append((truth.coarse_view or NO_VIEW, predicted.coarse_view or NO_VIEW))

    bbox = _coco_eval(gt, box_results, "bbox", classes)
    segm = _coco_eval(gt, mask_results, "segm", classes)
    posed = [(t, p) for t, p in view_pairs if t != NO_VIEW]
    posed_coarse = [(t, p) for t, p in coarse_pairs if t != NO_VIEW]
    lat_ms = np.array(latencies) * 1000.0
    return {
        "split": split,
        "images": len(coco_json["images"]),
        "bbox": bbox,
        "segm": segm,
        "wheel_box_AP50": bbox["per_class_AP50"].get(WHEEL_LABEL, float("nan")),
        "view_agreement": {
            "eight_way": sum(t == p for t, p in posed) / max(1, len(posed)),
            # A near-boundary yaw may land in the neighbouring bin: how often the view is at most one bin off.
            "eight_way_within_one_bin": sum(_bins_apart(t, p) <= 1 for t, p in posed) / max(1, len(posed)),
            "coarse": sum(t == p for t, p in posed_coarse) / max(1, len(posed_coarse)),
            "images_with_ground_truth_view": len(posed),
            "confusion": {f"{t}->{p}": n for (t, p), n in sorted(Counter(view_pairs).items())},
        },
        "latency_ms": {
            "p50": float(np.percentile(lat_ms, 50)),
            "p95": float(np.percentile(lat_ms, 95)),
            "mean": float(lat_ms.mean()),
            "device": backend.device,
            "min_size_test": int(backend.cfg.INPUT.MIN_SIZE_TEST),
        },
    }


def _bins_apart(truth: str, predicted: str) -> int:
    if predicted == NO_VIEW:
        return len(VIEWS)
    distance = abs(VIEWS.index(truth) - VIEWS.index(predicted)) % len(VIEWS)
    return min(distance, len(VIEWS) - distance)


def confusion_matrix(confusion: dict[str, int]) -> np.ndarray:
    matrix = np.zeros((len(VIEW_AXIS), len(VIEW_AXIS)), dtype=int)
    for key, count in confusion.items():
        truth, predicted = key.split("->")
        matrix[VIEW_AXIS.index(truth), VIEW_AXIS.index(predicted)] = count
    return matrix
