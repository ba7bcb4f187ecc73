"""Photo-quality measures on the Car Parts photos and on degraded copies of them: the data behind the defaults.

    .venv/bin/python -m benchmarks.quality [--dataset DIR] [--split testset] [--limit 0]

(--dataset: default $CARPOSE_DATA_ROOT/car-parts, see models/paths.py.)

Each photo is decoded as the service decodes it (working size: shortest edge 512, longest at most 853); the car
region is the union of its annotated part polygons (the ground truth stands in for the model's car mask, so no
model runs). Every photo is measured as it is and as copies that a seller should be told to retake: Gaussian
blur (radius 1.5 and 3 px), darkened (x0.3) and overexposed (x3, clipped), cropped (the car's left 30% cut
off) and shrunk (the photo at 35% on a grey canvas). For each threshold the script prints the share of
originals that pass and of degraded copies that fail, and the threshold that maximises their mean.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from models.paths import DEFAULT_DATASET_DIR
from service.imaging import WorkingSize, decode_upload
from service.postprocess import Detection
from service.quality import Quality, QualityThresholds, assess

WORKING = WorkingSize(512, 853)
# Every measure is taken with thresholds that pass everything; the verdicts are recomputed below.
OPEN = QualityThresholds(0.01, 0.0, 0.0, 0.0, 1.0, 1.0)

Sample = tuple[np.ndarray, np.ndarray]  # RGB, bool car mask


def car_masks(annotations: dict) -> dict[int, list[list[float]]]:
    polygons: dict[int, list[list[float]]] = {}
    for ann in annotations["annotations"]:
        segmentation = ann.get("segmentation")
        if isinstance(segmentation, list):
            polygons.setdefault(ann["image_id"], []).extend(p for p in segmentation if len(p) >= 6)
    return polygons


def load(root: Path, split: str, limit: int) -> list[Sample]:
    annotations = json.loads((root / split / "annotations.json").read_text())
    polygons = car_masks(annotations)
    samples: list[Sample] = []
    for info in annotations["images"]:
        if info["id"] not in polygons:
            continue
        data = (root / split / info["path"]).read_bytes()
        image = decode_upload(data, 50_000_000, 100_000_000, WORKING)
        canvas = Image.new("1", (image.width, image.height), 0)
        draw = ImageDraw.Draw(canvas)
        sx, sy = image.width / info["width"], image.height / info["height"]
        for poly in polygons[info["id"]]:
            draw.polygon([(x * sx, y * sy) for x, y in zip(poly[::2], poly[1::2], strict=False)], fill=1)
        mask = np.asarray(canvas, dtype=bool)
        if mask.sum() > 0:
            samples.append((image.rgb, mask))
        if limit and len(samples) >= limit:
            break
    return samples


def blur(radius: float) -> Callable[[Sample], Sample]:
    return lambda s: (np.asarray(Image.fromarray(s[0]).filter(ImageFilter.GaussianBlur(radius))), s[1])


def gain(factor: float) -> Callable[[Sample], Sample]:
    return lambda s: (np.clip(s[0].astype(np.float32) * factor, 0, 255).astype(np.uint8), s[1])


def crop_car_left(sample: Sample) -> Sample:
    rgb, mask = sample
    xs = np.nonzero(mask.any(axis=0))[0]
    cut = int(xs[0] + 0.3 * (xs[-1] - xs[0]))
    return rgb[:, cut:], mask[:, cut:]


def shrink(sample: Sample, factor: float = 0.35) -> Sample:
    rgb, mask = sample
    h, w = mask.shape
    sw, sh = max(1, round(w * factor)), max(1, round(h * factor))
    canvas = np.full_like(rgb, 128)
    canvas_mask = np.zeros_like(mask)
    top, left = (h - sh) // 2, (w - sw) // 2
    canvas[top : top + sh, left : left + sw] = np.asarray(
        Image.fromarray(rgb).resize((sw, sh), Image.Resampling.BILINEAR)
    )
    small_mask = Image.fromarray(mask.astype(np.uint8) * 255).resize((sw, sh), Image.Resampling.NEAREST)
    canvas_mask[top : top + sh, left : left + sw] = np.asarray(small_mask) > 127
    return canvas, canvas_mask


VARIANTS: dict[str, Callable[[Sample], Sample]] = {
    "original": lambda s: s,
    "blur_1.5": blur(1.5),
    "blur_3": blur(3.0),
    "dark_x0.3": gain(0.3),
    "bright_x3": gain(3.0),
    "cropped": crop_car_left,
    "shrunk": shrink,
}


def measure(sample: Sample) -> Quality:
    rgb, mask = sample
    ys, xs = np.nonzero(mask)
    box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    quality = assess(rgb, Detection("car", box, 1.0, mask=mask), OPEN)
    assert quality is not None
    return quality


def best_threshold(good: np.ndarray, bad: np.ndarray, above: bool) -> tuple[float, float, float]:
    """The threshold maximising (share of good passing + share of bad failing) / 2; `above`: pass if >= t."""
    best = (0.0, 0.0, 0.0)
    for t in np.unique(np.concatenate([good, bad])):
        good_pass = float(np.mean(good >= t) if above else np.mean(good <= t))
        bad_fail = float(np.mean(bad < t) if above else np.mean(bad > t))
        if (good_pass + bad_fail) / 2 > (best[1] + best[2]) / 2:
            best = (float(t), good_pass, bad_fail)
    return best


def rate(good: np.ndarray, bad: np.ndarray, t: float, above: bool) -> str:
    good_pass = np.mean(good >= t) if above else np.mean(good <= t)
    bad_fail = np.mean(bad < t) if above else np.mean(bad > t)
    return f"originals pass {good_pass:.0%}, degraded fail {bad_fail:.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET_DIR)
    parser.add_argument("--split", default="testset")
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()

    samples = load(args.dataset, args.split, args.limit)
    print(f"{len(samples)} photos of {args.dataset / args.split} at working size {WORKING.short}/{WORKING.long}")
    results: dict[str, list[Quality]] = {name: [measure(fn(s)) for s in samples] for name, fn in VARIANTS.items()}

    def values(name: str, attr: str) -> np.ndarray:
        return np.array([float(getattr(q, attr)) for q in results[name]])

    print(f"\n{'variant':<11} {'measure':<17} {'p5':>8} {'p25':>8} {'p50':>8} {'p75':>8} {'p95':>8}")
    for name in VARIANTS:
        for attr in ("sharpness", "brightness", "clipped_fraction", "car_fraction"):
            p = np.percentile(values(name, attr), [5, 25, 50, 75, 95])
            print(f"{name:<11} {attr:<17} " + " ".join(f"{v:8.3f}" for v in p))
    cut = np.mean([not q.in_frame for q in results["cropped"]])
    cut_orig = np.mean([not q.in_frame for q in results["original"]])
    print(f"\nin_frame=false: originals {cut_orig:.0%} (photos that do cut the car), cropped copies {cut:.0%}")

    defaults = QualityThresholds.defaults()
    checks = [
        ("min_sharpness", "sharpness", "blur_1.5", True),
        ("min_sharpness", "sharpness", "blur_3", True),
        ("min_brightness", "brightness", "dark_x0.3", True),
        ("max_brightness", "brightness", "bright_x3", False),
        ("max_clipped_fraction", "clipped_fraction", "bright_x3", False),
        ("min_car_fraction", "car_fraction", "shrunk", True),
    ]
    print("\nthreshold            vs          best (orig pass, degraded fail)     default")
    for setting, attr, bad, above in checks:
        good_v, bad_v = values("original", attr), values(bad, attr)
        t, gp, bf = best_threshold(good_v, bad_v, above)
        default = getattr(defaults, setting)
        print(
            f"{setting:<20} {bad:<11} {t:8.3f} ({gp:.0%}, {bf:.0%})   "
            f"{default:g}: {rate(good_v, bad_v, default, above)}"
        )
    ok = {
        name: np.mean([q.ok for q in (assess_with(defaults, s, VARIANTS[name]) for s in samples)]) for name in VARIANTS
    }
    print("\nquality.ok with the defaults: " + ", ".join(f"{name} {share:.0%}" for name, share in ok.items()))
    print("(fields of QualityThresholds: " + ", ".join(f.name for f in fields(QualityThresholds)) + ")")


def assess_with(thresholds: QualityThresholds, sample: Sample, fn: Callable[[Sample], Sample]) -> Quality:
    rgb, mask = fn(sample)
    ys, xs = np.nonzero(mask)
    box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    quality = assess(rgb, Detection("car", box, 1.0, mask=mask), thresholds)
    assert quality is not None
    return quality


if __name__ == "__main__":
    main()
