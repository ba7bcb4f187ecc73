"""The inference engines side by side on real photos: the same answers, and the time each takes.

    python -m benchmarks.engines [--engines torch,openvino] [--images N] [--dataset DIR]
                                 [--threads N] [--model-dir DIR]

Each engine loads the model in this process (the time is printed: its start-up cost), then every photo of the
Car Parts test split goes through `Runtime.predict` (the decode and pose of POST /pose) on every engine in turn,
photo by photo, so a machine whose speed drifts slows them alike. Printed per engine: load seconds, p50/p95 of
the model call (the `inference` stage) and of the whole prediction, their ratio to the first engine; and its
answers against the first engine's: the same eight-way view, the main car's box (largest corner difference in
pixels), azimuth_deg, and the detections matched by class and box (a detection counts when it scores at least
`--margin` above the score threshold in one engine: one nearer the threshold may fall either side of it).

Not a test: timings depend on the machine and its load (printed); the accuracy bounds are in docs/engines.md.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from benchmarks.throughput import machine
from models.paths import DEFAULT_DATASET_DIR
from service.backends.detectron import DetectronBackend
from service.engines import ENGINES
from service.postprocess import Detection
from service.runtime import Prediction, Runtime
from service.settings import DEFAULT_MODEL_DIR

BOX_TOLERANCE_PX = 2.0  # issue 23's bound on box differences between engines


@dataclass
class Side:
    engine: str
    backend: DetectronBackend
    load_s: float
    inference_s: list[float] = field(default_factory=list)
    total_s: list[float] = field(default_factory=list)
    answers: list[Prediction] = field(default_factory=list)


def box_difference(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return float(np.max(np.abs(np.subtract(a, b))))


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_detections(
    reference: list[Detection], other: list[Detection], min_score: float
) -> tuple[int, int, list[float]]:
    """(clear detections of either side, those without a partner of the same class, box differences of the pairs).

    Clear: scoring at least `min_score` on its side. Its partner is the other side's detection of the same class
    with the highest IoU (at least 0.5), whatever its score."""
    clear = unmatched = 0
    differences: list[float] = []
    for mine, theirs in ((reference, other), (other, reference)):
        for detection in mine:
            if detection.score < min_score:
                continue
            clear += 1
            candidates = [d for d in theirs if d.label == detection.label]
            best = max(candidates, key=lambda d: iou(d.box, detection.box), default=None)
            if best is None or iou(best.box, detection.box) < 0.5:
                unmatched += 1
            else:
                differences.append(box_difference(best.box, detection.box))
    return clear, unmatched, differences


def percentile_ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help="comma list; the first is the reference (default: all)"
    )
    parser.add_argument("--images", type=int, default=100, help="photos of the test split (default: all 100)")
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET_DIR)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--threads", type=int, default=0, help="threads of a model call (POSE_TORCH_THREADS; 0 = all)")
    parser.add_argument("--margin", type=float, default=0.1, help="clear detections: score >= threshold + margin")
    args = parser.parse_args(argv)

    names = [name.strip() for name in args.engines.split(",") if name.strip()]
    unknown = [name for name in names if name not in ENGINES]
    if unknown:
        parser.error(f"unknown engines {unknown}; known: {', '.join(ENGINES)}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    folder = args.dataset / "testset" / "JPEGImages"
    photos = sorted(folder.glob("*.jpg"))[: args.images]
    if not photos:
        parser.error(f"no photos in {folder}")

    sides = []
    for name in names:
        started = time.perf_counter()
        backend = DetectronBackend(args.model_dir, "cpu", engine=name, threads=args.threads)
        backend.detect_array(np.full((512, 640, 3), 127, np.uint8))  # the first call of a fresh model is slow
        sides.append(Side(name, backend, time.perf_counter() - started))

    runtimes = [Runtime(side.backend) for side in sides]
    for path in photos:
        data = path.read_bytes()
        for side, runtime in zip(sides, runtimes, strict=True):
            started = time.perf_counter()
            prediction = runtime.predict(data)
            side.total_s.append(time.perf_counter() - started)
            side.inference_s.append(prediction.timings_ms["inference"] / 1000.0)
            side.answers.append(prediction)

    load = os.getloadavg()
    threshold = sides[0].backend.score_threshold
    print(f"{len(photos)} photos of {folder}; {machine()}, threads {args.threads or 'all'}")
    print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    reference = sides[0]
    print(
        f"\n{'engine':<15} {'load s':>7} {'infer p50':>10} {'p95':>7} {'ratio':>6} "
        f"{'total p50':>10} {'p95':>7} {'ratio':>6}"
    )
    for side in sides:
        infer_ratio = np.median(side.inference_s) / np.median(reference.inference_s)
        total_ratio = np.median(side.total_s) / np.median(reference.total_s)
        print(
            f"{side.engine:<15} {side.load_s:7.1f} {percentile_ms(side.inference_s, 50):10.1f} "
            f"{percentile_ms(side.inference_s, 95):7.1f} {infer_ratio:6.2f} {percentile_ms(side.total_s, 50):10.1f} "
            f"{percentile_ms(side.total_s, 95):7.1f} {total_ratio:6.2f}"
        )
    print(f"\nanswers against {reference.engine} (boxes in pixels of the posed image; tolerance {BOX_TOLERANCE_PX} px)")
    for side in sides[1:]:
        same_view = car_diffs = 0
        car_box: list[float] = []
        azimuth: list[float] = []
        clear = unmatched = 0
        pair_diffs: list[float] = []
        for ref, other in zip(reference.answers, side.answers, strict=True):
            same_view += ref.pose.view == other.pose.view
            if ref.pose.car is not None and other.pose.car is not None:
                car_box.append(box_difference(ref.pose.car.box, other.pose.car.box))
                car_diffs += car_box[-1] > BOX_TOLERANCE_PX
            if ref.pose.azimuth_deg is not None and other.pose.azimuth_deg is not None:
                delta = (ref.pose.azimuth_deg - other.pose.azimuth_deg + 180.0) % 360.0 - 180.0
                azimuth.append(abs(delta))
            c, u, d = match_detections(ref.detections, other.detections, threshold + args.margin)
            clear, unmatched, pair_diffs = clear + c, unmatched + u, pair_diffs + d
        print(f"  {side.engine}:")
        print(f"    same eight-way view on {same_view} of {len(photos)} photos")
        if car_box:
            print(
                f"    main car box: max difference {max(car_box):.2f} px, beyond {BOX_TOLERANCE_PX} px on {car_diffs} "
                f"of {len(car_box)}"
            )
        if azimuth:
            print(f"    azimuth_deg: median difference {np.median(azimuth):.2f} deg, max {max(azimuth):.2f}")
        within = sum(d <= BOX_TOLERANCE_PX for d in pair_diffs)
        print(
            f"    clear detections (score >= {threshold + args.margin:.2f}): {clear}, without a partner {unmatched}; "
            f"pairs within {BOX_TOLERANCE_PX} px {within} of {len(pair_diffs)}"
            + (f", max {max(pair_diffs):.2f} px" if pair_diffs else "")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
