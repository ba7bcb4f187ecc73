"""Calibrate the typical head-on area of every part from the Car Parts TRAINING split ground truth.

    python -m models.calibrate --dataset ../shared/datasets/car-parts [--write]

The pose model (see `pose.py`) divides a detected part's mask area by K_p * car_height**2, where K_p is the
part's area when it faces the camera squarely, relative to the car box height squared (the car's height in
the image barely changes with yaw, unlike its width); without a mask it divides the box width by
K_width_p * car_height (box heights of wide parts grow in oblique views from above, widths do not).
The ground truth has no azimuth labels, so we cannot
measure "head-on" directly; instead we take a high percentile of area / car_height**2 over all annotations
of the part: parts are seen at many angles, and the upper tail is the near-head-on views. The 85th
percentile rather than the maximum keeps close-ups with a cropped car (small car box, huge ratio) out.

Only these numbers are stored (in `part_areas.py`); no image or annotation data is copied.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.postprocess.vocabulary import CAR_LABEL, PART_LABELS

from .groundtruth import car_instance, split_coco_instances

PERCENTILE = 85.0
MIN_CAR_HEIGHT_PX = 8.0
# The runtime module the numbers go to (generated source, read by `service.postprocess.pose`).
OUTPUT = Path(__file__).resolve().parent.parent / "service" / "postprocess" / "part_areas.py"


def polygon_area(flat: Sequence[float]) -> float:
    """Shoelace area of a flat [x0, y0, x1, y1, ...] polygon."""
    xs = np.asarray(flat[0::2], dtype=np.float64)
    ys = np.asarray(flat[1::2], dtype=np.float64)
    return float(0.5 * abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))


Ratios = dict[str, list[float]]


def collect_ratios(coco: dict) -> tuple[Ratios, Ratios, Ratios, int]:
    """Per label: box width / H, box area / H**2 and polygon area / H**2; H = height of the union of the parts."""
    width_ratios: Ratios = defaultdict(list)
    box_ratios: Ratios = defaultdict(list)
    mask_ratios: Ratios = defaultdict(list)
    images = 0
    for parts in split_coco_instances(coco).values():
        car = car_instance(parts)
        if car is None:
            continue
        car_h = car.box[3] - car.box[1]
        if car_h < MIN_CAR_HEIGHT_PX:
            continue
        images += 1
        for part in parts:
            if part.label == CAR_LABEL:
                continue
            x0, y0, x1, y1 = part.box
            width_ratios[part.label].append((x1 - x0) / car_h)
            box_ratios[part.label].append((x1 - x0) * (y1 - y0) / car_h**2)
            mask_ratios[part.label].append(sum(polygon_area(p) for p in part.polygons) / car_h**2)
    return width_ratios, box_ratios, mask_ratios, images


def mirror_label(label: str) -> str:
    """left <-> right counterpart of a label (the label itself when it has no side)."""
    if "left" in label:
        return label.replace("left", "right")
    return label.replace("right", "left")


def _symmetric_percentiles(ratios: Ratios, percentile: float) -> dict[str, float]:
    # Cars are mirror-symmetric: a left part's head-on area equals its right twin's. Pooling both sides
    # halves the sampling noise and keeps left/right differences from biasing the azimuth.
    out = {}
    for label in sorted(ratios):
        pooled = ratios[label] + (ratios.get(mirror_label(label), []) if mirror_label(label) != label else [])
        out[label] = round(float(np.percentile(pooled, percentile)), 4)
    return out


@dataclass(frozen=True)
class Calibration:
    k_width: dict[str, float]
    k_box: dict[str, float]
    k_mask: dict[str, float]
    images: int
    percentile: float


def calibrate(annotations: Path, percentile: float = PERCENTILE) -> Calibration:
    coco = json.loads(annotations.read_text())
    width_ratios, box_ratios, mask_ratios, images = collect_ratios(coco)
    return Calibration(
        k_width=_symmetric_percentiles(width_ratios, percentile),
        k_box=_symmetric_percentiles(box_ratios, percentile),
        k_mask=_symmetric_percentiles(mask_ratios, percentile),
        images=images,
        percentile=percentile,
    )


def render_module(cal: Calibration) -> str:
    def table(values: dict[str, float]) -> str:
        return "\n".join(f'    "{label}": {values[label]},' for label in PART_LABELS if label in values)

    return f'''"""Typical head-on part sizes relative to the car box height. GENERATED, do not edit by hand.

Regenerate with `python -m models.calibrate --dataset PATH --write` (Car Parts training split,
{cal.images} images, {cal.percentile:g}th percentile per label of width / car_height and
area / car_height**2, left and right twins pooled). Numbers only, no data.
"""

from __future__ import annotations

# Bounding-box width / car box height (used for detections without a mask).
K_WIDTH: dict[str, float] = {{
{table(cal.k_width)}
}}

# Bounding-box area / car box height**2 (for reference and the synthetic test car).
K_BOX: dict[str, float] = {{
{table(cal.k_box)}
}}

# Mask (polygon) area / car box height**2 (used when a detection carries a mask).
K_MASK: dict[str, float] = {{
{table(cal.k_mask)}
}}
'''


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="car-parts dataset dir (with trainingset/)")
    parser.add_argument("--percentile", type=float, default=PERCENTILE)
    parser.add_argument("--write", action="store_true", help=f"overwrite {OUTPUT.name} instead of printing")
    args = parser.parse_args(argv)
    annotations = args.dataset / "trainingset" / "annotations.json"
    if not annotations.is_file():
        print(f"not found: {annotations}", file=sys.stderr)
        return 2
    source = render_module(calibrate(annotations, args.percentile))
    if args.write:
        OUTPUT.write_text(source)
        print(f"wrote {OUTPUT}")
    else:
        print(source)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
