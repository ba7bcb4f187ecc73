"""`quality.whole_car` and the view evidence check on crops and degraded copies of Car Parts and turntable photos.

    .venv/bin/python -m benchmarks.whole_car [--split testset|trainingset|turntable] [--limit 0] [--cache FILE]

Runs the default model (real Detectron2 inference, the service's decode) on every photo of the split (Car Parts
test photos by default) and on copies of it:
crops of the annotated car (from the union of its part polygons): one part (the largest annotated non-wheel part,
padded by 15 %), half the car (the half along its long side, alternately the left/top or right/bottom), three
quarters of it, and the whole photo; each crop is upscaled so its short side is 512 px, as a close-up photo would
be (on the turntable, whose photos have no part annotations, the crops use the model's own car box and parts).
Degraded copies of labelled photos: overexposed x3, darkened x0.3, Gaussian blur radius 8, Gaussian noise sigma 40,
JPEG quality 10.
Prints the confusion of `whole_car` per crop kind (originals whose annotated car touches the border are counted
apart: they are real close-ups) and, per degradation, views more than 90 degrees from the label at confidence
>= 0.5. `--cache` keeps the detections (car masks only) so a rerun skips the model.
"""

from __future__ import annotations

import argparse
import io
import json
import pickle
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from models.groundtruth import car_instance, split_coco_instances
from models.paths import DATASETS_DIR, DEFAULT_DATASET_DIR, DEFAULT_TURNTABLE_DIR
from service.margin import FrameMargin
from service.postprocess import CAR_LABEL, WHEEL_LABEL, Detection, PoseConfig
from service.postprocess.vocabulary import VIEWS
from service.runtime import Runtime
from service.settings import DEFAULT_FRAME_MARGIN, DEFAULT_MODEL_DIR

LABELS = {  # eight-way view labels, by eye (models/eval/README, the views dataset's README)
    "testset": Path(__file__).resolve().parent.parent / "models" / "eval" / "testset-views.tsv",
    "trainingset": DATASETS_DIR / "car-parts-views" / "trainingset-views.tsv",
}
CROP_SHORT_SIDE = 512
DEGRADE_EVERY = 8  # degraded copies of every 8th photo (13 of 100): the CPU run stays under half an hour
Box = tuple[float, float, float, float]


def pad(box: Box, share: float, size: tuple[int, int]) -> Box:
    x0, y0, x1, y1 = box
    dx, dy = share * (x1 - x0), share * (y1 - y0)
    return (max(0.0, x0 - dx), max(0.0, y0 - dy), min(size[0], x1 + dx), min(size[1], y1 + dy))


def crop(image: Image.Image, box: Box) -> Image.Image:
    part = image.crop((round(box[0]), round(box[1]), round(box[2]), round(box[3])))
    scale = CROP_SHORT_SIDE / max(1, min(part.size))
    return part.resize(
        (max(1, round(part.width * scale)), max(1, round(part.height * scale))), Image.Resampling.BICUBIC
    )


def crops(image: Image.Image, car: Box, parts: list[tuple[str, Box]], index: int) -> dict[str, Image.Image]:
    size = image.size
    x0, y0, x1, y1 = car
    wide = (x1 - x0) >= (y1 - y0)
    first = index % 2 == 0

    def share(fraction: float) -> Box:
        if wide:
            return (x0, y0, x0 + fraction * (x1 - x0), y1) if first else (x1 - fraction * (x1 - x0), y0, x1, y1)
        return (x0, y0, x1, y0 + fraction * (y1 - y0)) if first else (x0, y1 - fraction * (y1 - y0), x1, y1)

    def area(b: Box) -> float:
        return (b[2] - b[0]) * (b[3] - b[1])

    body = [b for label, b in parts if label != WHEEL_LABEL]
    out = {"whole": image}
    if body:
        out["part"] = crop(image, pad(max(body, key=area), 0.15, size))
    out["half"] = crop(image, pad(share(0.5), 0.03, size))
    out["three_quarter"] = crop(image, pad(share(0.75), 0.03, size))
    return out


def gain(factor: float) -> Callable[[Image.Image], Image.Image]:
    return lambda im: Image.fromarray(np.clip(np.asarray(im, np.float32) * factor, 0, 255).astype(np.uint8))


def noise(im: Image.Image) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(
        np.clip(np.asarray(im, np.float32) + rng.normal(0, 40, (im.height, im.width, 3)), 0, 255).astype(np.uint8)
    )


def jpeg10(im: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=10)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


DEGRADATIONS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "overexposed_x3": gain(3.0),
    "dark_x0.3": gain(0.3),
    "blur_8": lambda im: im.filter(ImageFilter.GaussianBlur(8)),
    "noise_40": noise,
    "jpeg_10": jpeg10,
}


def jpeg_bytes(im: Image.Image) -> bytes:
    buffer = io.BytesIO()
    im.convert("RGB").save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def slim(detections: list[Detection]) -> list[Detection]:
    """Masks only on cars (the quality reads the main car's), also in a margin pass's photo pass: the cache stays
    small."""
    return [
        replace(d, photo_pass=None if d.photo_pass is None else tuple(slim(list(d.photo_pass))))
        if d.label == CAR_LABEL
        else replace(d, mask=None)
        for d in detections
    ]


@dataclass(frozen=True)
class Photo:
    """One photo to crop: its car box and parts (annotated, or on the turntable the model's own), its view label."""

    file: str
    image: Image.Image
    car: Box
    parts: list[tuple[str, Box]]
    label: tuple[str, tuple[str, ...]] | None


def car_parts_photos(root: Path, split: str) -> Iterator[Photo]:
    coco = json.loads((root / split / "annotations.json").read_text())
    instances = split_coco_instances(coco)
    labels = read_labels(LABELS[split])
    for info in sorted(coco["images"], key=lambda im: im["file_name"]):
        parts = instances.get(int(info["id"]), [])
        car = car_instance(parts)
        if car is None:
            continue
        image = Image.open(root / split / info["path"]).convert("RGB")
        yield Photo(info["file_name"], image, car.box, [(p.label, p.box) for p in parts], labels.get(info["file_name"]))


def turntable_photos(root: Path, runtime: Runtime) -> Iterator[Photo]:
    """Studio photos of whole cars, all in frame: no part annotations, so the crops use the model's own car box
    and parts on the whole photo (a studio car is found reliably; docs/views.md)."""
    for path in sorted(root.glob("*.jpg")):
        image = Image.open(path).convert("RGB")
        decoded = runtime.decode(jpeg_bytes(image))
        pose = runtime.pose(runtime.detect(decoded), decoded)
        if pose.car is None:
            continue
        yield Photo(path.name, image, pose.car.box, [(p.label, p.box) for p in pose.parts], None)


def collect(
    runtime: Runtime, photos: Iterable[Photo], limit: int, cache: Path | None = None, start: int = 0
) -> list[dict]:
    rows: list[dict] = []
    for index, photo in enumerate(photos):
        if index < start:
            continue
        image = photo.image
        gt_cut = (
            photo.car[0] <= 0.01 * image.width
            or photo.car[2] >= 0.99 * image.width
            or photo.car[1] <= 0.01 * image.height
            or photo.car[3] >= 0.99 * image.height
        )
        variants = crops(image, photo.car, photo.parts, index)
        if index % DEGRADE_EVERY == 0 and photo.label is not None:
            variants.update({name: fn(image) for name, fn in DEGRADATIONS.items()})
        for kind, im in variants.items():
            data = jpeg_bytes(im)
            detections = runtime.detect(runtime.decode(data))
            rows.append(
                {
                    "file": photo.file,
                    "kind": kind,
                    "gt_cut": gt_cut,
                    "label": photo.label,
                    "data": data,
                    "detections": slim(detections),
                }
            )
        if index % 10 == 9:
            print(f"{len(rows)} inferences", flush=True)
            if cache is not None:  # partial results survive an interrupted run
                cache.with_suffix(".part").write_bytes(pickle.dumps(rows))
        if limit and index + 1 >= limit:
            break
    return rows


def read_labels(path: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    out = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        out[cols[0]] = (cols[1], tuple(c for c in (cols[2].split(",") if len(cols) > 2 else []) if c))
    return out


def view_error_deg(view: str, label: str) -> float:
    d = abs(VIEWS.index(view) - VIEWS.index(label)) * 45 % 360
    return min(d, 360 - d)


def report(runtime: Runtime, rows: list[dict]) -> None:
    posed = []
    for row in rows:
        image = runtime.decode(row["data"])
        pose = runtime.pose(row["detections"], image, min_confidence=0.0)
        posed.append((row, pose, runtime.quality(image, pose)))
    print(f"{len(rows)} model answers on {len({r['file'] for r in rows})} photos")

    print("\nwhole_car on crops (no car found counts as flagged: nothing would be accepted)")
    print(f"{'crop':<22} {'photos':>6} {'whole_car false':>16} {'quality.ok':>11}")
    groups = {
        "part": lambda r: r["kind"] == "part",
        "half": lambda r: r["kind"] == "half",
        "three_quarter": lambda r: r["kind"] == "three_quarter",
        "whole (car in frame)": lambda r: r["kind"] == "whole" and not r["gt_cut"],
        "whole (car cut, as shot)": lambda r: r["kind"] == "whole" and r["gt_cut"],
    }
    for name, pick in groups.items():
        chosen = [(r, p, q) for r, p, q in posed if pick(r)]
        if not chosen:
            continue
        flagged = sum(q is None or not q.whole_car for _, _, q in chosen)
        ok = sum(q is not None and q.ok for _, _, q in chosen)
        print(f"{name:<22} {len(chosen):>6} {flagged / len(chosen):>16.0%} {ok / len(chosen):>11.0%}")

    print("\ndegraded copies: views > 90 deg from the label at confidence >= 0.5")
    for kind in DEGRADATIONS:
        copies = [(r, p) for r, p, _ in posed if r["kind"] == kind and r["label"]]
        bad = [
            (r["file"], p.view, p.confidence)
            for r, p in copies
            if p.view and p.confidence >= 0.5 and view_error_deg(p.view, r["label"][0]) > 90
        ]
        confident = sum(p.view is not None and p.confidence >= 0.5 for _, p in copies)
        print(f"{kind:<16} {len(copies):>3} photos, {confident:>3} confident views, {len(bad)} off by > 90: {bad}")

    print("\nconfidence floor on the originals (eight-way view vs models/eval/testset-views.tsv)")
    whole = [(p, r["label"]) for r, p, _ in posed if r["kind"] == "whole" and r["label"] and p.view]
    total = sum(1 for r, _, _ in posed if r["kind"] == "whole" and r["label"])
    print(f"{'floor':>6} {'kept':>6} {'right (exact)':>14} {'right (or alternate)':>21}")
    for floor in (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.96, 0.97):
        kept = [(p, lab) for p, lab in whole if p.confidence >= floor]
        if not kept:
            continue
        exact = sum(p.view == lab[0] for p, lab in kept) / len(kept)
        loose = sum(p.view == lab[0] or p.view in lab[1] for p, lab in kept) / len(kept)
        print(f"{floor:>6.2f} {len(kept) / total:>6.0%} {exact:>14.1%} {loose:>21.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET_DIR)
    parser.add_argument("--split", choices=[*LABELS, "turntable"], default="testset")
    parser.add_argument("--turntable", type=Path, default=DEFAULT_TURNTABLE_DIR)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--start", type=int, default=0, help="skip the first photos (to split a run over processes)")
    parser.add_argument(
        "--cache", type=Path, nargs="*", default=[], help="detections: read if they exist (all of them), else written"
    )
    parser.add_argument(
        "--frame-margin",
        type=float,
        default=DEFAULT_FRAME_MARGIN,
        help="POSE_FRAME_MARGIN (0 = off; default: the service's)",
    )
    args = parser.parse_args()
    from service.backends.detectron import DetectronBackend

    backend = DetectronBackend(args.model_dir, device="cpu")
    margin = FrameMargin(share=args.frame_margin)
    runtime = Runtime(backend, PoseConfig(score_threshold=backend.score_threshold), frame_margin=margin)
    cached = [path for path in args.cache if path.is_file()]
    if cached:
        rows = [row for path in cached for row in pickle.loads(path.read_bytes())]
    else:
        target = args.cache[0] if args.cache else None
        photos = (
            turntable_photos(args.turntable, runtime)
            if args.split == "turntable"
            else car_parts_photos(args.dataset, args.split)
        )
        rows = collect(runtime, photos, args.limit, target, args.start)
        if target is not None:
            target.write_bytes(pickle.dumps(rows))
    report(runtime, rows)


if __name__ == "__main__":
    main()
