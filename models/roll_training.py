"""Train the camera-roll head (`service/backends/roll.py`) without a single roll label: self-supervised by rotation.

The Car Parts training photos are close to level (people photograph cars upright). Turning such a photo by an
angle r in the image plane makes a photo whose camera was rolled, with the label r exact and free. Each rolled
copy is what a rolled phone would take: the photo turned about its centre, then cut to the largest upright
rectangle inside it (no empty corners: a rolled camera sees a full frame), the car's annotated outline turned with
it (the car box the crop is taken around), then made to look like other photos (smaller, JPEG, light, blur).

The head reads the frozen ImageNet MobileNetV2 trunk that the view classifier already runs on the same crop of
the main car, so serving the roll costs one small head, not a second network. Trunk features are computed once per
rolled crop and cached; the head trains in seconds, which makes a 5-fold cross-validation by photo cheap. Mirror
rows use the crop's feature map flipped left to right (the trunk is nearly flip-equivariant; as in
`view_training.py`), with the roll negated: a mirror image turns the other way. Serving runs the trunk on the real
mirror image and averages the two readings (`service.backends.roll.mirror_averaged_roll`), which also cancels a
bias shared by a photo and its mirror.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from service.backends.roll import MODEL_CARD_KEY, ROLL_SCALE_DEG, RollHead, mirror_averaged_roll
from service.backends.view_classifier import CropSpec, crop_car
from service.console import progress
from service.modeling.inference import prepare_for_inference

from .groundtruth import car_instance, split_coco_instances
from .view_training import fit_head, imagenet_trunk, jittered_box, load_rgb

log = logging.getLogger("models.roll_training")

WEIGHTS_FILE = "roll_head.pth"
FEATURE_BATCH = 16
WORKING_LONG_SIDE = 1024  # photos are shrunk to this first: the crop is 224 px, more pixels only cost time


@dataclass(frozen=True)
class RollRecipe:
    rolls_per_photo: int = 8  # rolled copies of each training photo (each also mirrored)
    max_roll_deg: float = 25.0  # rolls drawn uniformly in +-this
    level_share: float = 0.15  # share of copies left level (roll 0): level photos are the common case
    channels: int = 32  # 1x1 reduction of the trunk's 1280 channels, per cell of the 7x7 grid
    projected: int = 96  # training reads the features' top principal channels (folded into the head on export)
    dropout: float = 0.2
    epochs: int = 60
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.05
    jitter: float = 0.06  # car box sides move by up to this fraction (the detector's box is not the outline's)
    folds: int = 0  # cross-validation by photo before the final fit; 0: none (held-out figures come from elsewhere)
    seed: int = 0


def inscribed_size(width: float, height: float, roll_deg: float) -> tuple[float, float]:
    """Width and height of the largest upright rectangle inside a width x height frame turned by roll_deg."""
    angle = math.radians(abs(roll_deg))
    sin_a, cos_a = math.sin(angle), math.cos(angle)
    if sin_a < 1e-9:
        return width, height
    long_side, short_side = (width, height) if width >= height else (height, width)
    if short_side <= 2.0 * sin_a * cos_a * long_side or abs(sin_a - cos_a) < 1e-10:
        half = 0.5 * short_side  # the rectangle's corners touch the two long sides
        w, h = (half / sin_a, half / cos_a) if width >= height else (half / cos_a, half / sin_a)
    else:
        cos_2a = cos_a * cos_a - sin_a * sin_a
        w, h = (width * cos_a - height * sin_a) / cos_2a, (height * cos_a - width * sin_a) / cos_2a
    return w, h


def rolled_photo(rgb: np.ndarray, outline: np.ndarray, roll_deg: float) -> tuple[np.ndarray, tuple[float, ...]]:
    """The photo a camera rolled by `roll_deg` would take (the scene turned counter-clockwise by roll_deg, cut to
    a full frame) and the car box there: the turned outline's (N, 2) points' box, clipped to the frame."""
    height, width = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), roll_deg, 1.0)  # + = counter-clockwise on screen
    turned = cv2.warpAffine(rgb, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    inner_w, inner_h = inscribed_size(width, height, roll_deg)
    x0, y0 = math.ceil((width - inner_w) / 2.0), math.ceil((height - inner_h) / 2.0)
    x1 = max(x0 + 8, math.floor((width + inner_w) / 2.0))
    y1 = max(y0 + 8, math.floor((height + inner_h) / 2.0))
    photo = np.ascontiguousarray(turned[y0:y1, x0:x1])
    points = outline @ matrix[:, :2].T + matrix[:, 2] - (x0, y0)
    box = (
        float(np.clip(points[:, 0].min(), 0, x1 - x0)),
        float(np.clip(points[:, 1].min(), 0, y1 - y0)),
        float(np.clip(points[:, 0].max(), 0, x1 - x0)),
        float(np.clip(points[:, 1].max(), 0, y1 - y0)),
    )
    return photo, box


def photo_like(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy that looks like another camera's photo: smaller, JPEG-compressed, other light, sometimes blurred."""
    scale = rng.uniform(0.35, 1.0)
    photo = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 0.98 else rgb
    if rng.uniform() < 0.25:
        photo = cv2.GaussianBlur(photo, (0, 0), rng.uniform(0.5, 1.8))
    gain, shift = rng.uniform(0.7, 1.3), rng.uniform(-20.0, 20.0, size=3)
    photo = np.clip(photo.astype(np.float32) * gain + shift, 0, 255).astype(np.uint8)
    quality = int(rng.uniform(30, 95))
    _, encoded = cv2.imencode(".jpg", np.ascontiguousarray(photo[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return np.ascontiguousarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR)[:, :, ::-1])


def car_outlines(annotations: Path) -> dict[str, np.ndarray]:
    """File name -> (N, 2) points of the annotated car (the union of its parts' polygons)."""
    coco = json.loads(Path(annotations).read_text())
    instances = split_coco_instances(coco)
    outlines: dict[str, np.ndarray] = {}
    for image in coco["images"]:
        car = car_instance(instances.get(int(image["id"]), []))
        if car is not None:
            outlines[image["file_name"]] = np.concatenate([np.reshape(p, (-1, 2)) for p in car.polygons])
    return outlines


def shrunk(rgb: np.ndarray, outline: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scale = min(1.0, WORKING_LONG_SIDE / max(rgb.shape[:2]))
    if scale >= 1.0:
        return rgb, outline
    return cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), outline * scale


def draw_rolls(rng: np.random.Generator, count: int, recipe: RollRecipe) -> np.ndarray:
    rolls = rng.uniform(-recipe.max_roll_deg, recipe.max_roll_deg, size=count)
    rolls[rng.uniform(size=count) < recipe.level_share] = 0.0
    return rolls


@dataclass
class RollFeatures:
    """Cached trunk features: row 2k is a rolled crop, row 2k+1 its mirror (flipped feature map, negated roll)."""

    features: np.ndarray  # (M, 1280, 7, 7) float16
    photo: np.ndarray  # (M,) index of the photo each row comes from
    roll: np.ndarray  # (M,) the row's roll in degrees


@torch.inference_mode()
def trunk_of(trunk: nn.Module, crops: np.ndarray) -> np.ndarray:
    from service.backends.view_classifier import to_tensor

    out = []
    for start in range(0, len(crops), FEATURE_BATCH):
        batch = to_tensor(crops[start : start + FEATURE_BATCH]).to(memory_format=torch.channels_last)
        out.append(trunk(batch).float().contiguous().half().numpy())
    return np.concatenate(out)


def build_roll_features(
    images: Sequence[Path], outlines: Sequence[np.ndarray], spec: CropSpec, recipe: RollRecipe
) -> RollFeatures:
    trunk = prepare_for_inference(imagenet_trunk().trunk)
    rng = np.random.default_rng(recipe.seed)
    feats, photo, roll = [], [], []
    for index, (path, outline) in enumerate(progress(list(zip(images, outlines, strict=True)), desc="roll: features")):
        rgb, points = shrunk(load_rgb(path), outline)
        rolls = draw_rolls(rng, recipe.rolls_per_photo, recipe)
        crops = []
        for r in rolls:
            turned, box = rolled_photo(rgb, points, float(r))
            scale_before = turned.shape[1]
            turned = photo_like(turned, rng)
            factor = turned.shape[1] / scale_before
            crops.append(crop_car(turned, jittered_box([v * factor for v in box], rng, recipe.jitter), spec))
        single = trunk_of(trunk, np.stack(crops))
        rows = np.empty((2 * len(single), *single.shape[1:]), dtype=single.dtype)
        rows[0::2], rows[1::2] = single, single[..., ::-1]
        feats.append(rows)
        for r in rolls:
            photo += [index, index]
            roll += [float(r), -float(r)]
    return RollFeatures(np.concatenate(feats), np.array(photo), np.array(roll, dtype=np.float32))


@dataclass(frozen=True)
class Projection:
    """Channels -> their top principal components: (x - mean) @ basis.T per grid cell. Training on a few of them
    instead of 1280 is 10x cheaper on a shared CPU; a 1x1 convolution after it is still one 1x1 convolution of the
    raw channels (`fold_projection`), so serving reads the trunk's features directly."""

    mean: np.ndarray  # (C,)
    basis: np.ndarray  # (K, C)

    def apply(self, features: np.ndarray) -> np.ndarray:
        out = np.empty((len(features), len(self.basis), *features.shape[2:]), dtype=np.float32)
        for start in range(0, len(features), 256):
            chunk = features[start : start + 256].astype(np.float32) - self.mean[None, :, None, None]
            out[start : start + 256] = np.einsum("nchw,kc->nkhw", chunk, self.basis, optimize=True)
        return out


def fit_projection(features: np.ndarray, components: int, seed: int, cells: int = 40_000) -> Projection:
    """Principal channels of the trunk features (grid cells of all rows pooled; a random sample of them)."""
    rng = np.random.default_rng(seed)
    n, _, h, w = features.shape
    rows, ys, xs = rng.integers(0, n, cells), rng.integers(0, h, cells), rng.integers(0, w, cells)
    sample = features[rows, :, ys, xs].astype(np.float64)
    mean = sample.mean(axis=0)
    _, _, vt = np.linalg.svd(sample - mean, full_matrices=False)
    return Projection(mean.astype(np.float32), vt[:components].astype(np.float32))


def fold_projection(head: RollHead, projection: Projection) -> RollHead:
    """The same function on raw trunk channels: conv(P (x - mean)) = (W P) x + (b - W P mean)."""
    conv = head.reduce[0]
    assert isinstance(conv, nn.Conv2d) and conv.bias is not None
    weight = conv.weight.detach()[:, :, 0, 0].double() @ torch.from_numpy(projection.basis).double()  # (out, C)
    bias = conv.bias.detach().double() - weight @ torch.from_numpy(projection.mean).double()
    folded = RollHead(channels=conv.out_channels, grid=head.grid, dropout=head.dropout)
    state = head.state_dict()
    state["reduce.0.weight"] = weight.float()[:, :, None, None]
    state["reduce.0.bias"] = bias.float()
    folded.load_state_dict(state)
    return folded.eval()


def train_roll_head(features: np.ndarray, rolls: np.ndarray, recipe: RollRecipe) -> RollHead:
    """The head trained on (M, K, g, g) (projected) features against rolls in degrees (smooth L1 on roll / scale)."""
    torch.manual_seed(recipe.seed)
    head = RollHead(
        channels=recipe.channels, grid=features.shape[-1], dropout=recipe.dropout, in_channels=features.shape[1]
    )
    smooth_l1 = nn.SmoothL1Loss(beta=0.05)
    targets = torch.from_numpy(rolls / ROLL_SCALE_DEG).float()
    fit_head(head, features, targets, lambda output, target: smooth_l1(output.squeeze(1), target), recipe)
    return head


@torch.inference_mode()
def predict_rolls(head: RollHead, features: np.ndarray) -> np.ndarray:
    """Degrees for each row pair (crop, mirror): the mirror-averaged reading, as served."""
    return mirror_averaged_roll(head(torch.from_numpy(features).float()), ROLL_SCALE_DEG).numpy()


def error_summary(predicted: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    errors = np.abs(np.asarray(predicted) - np.asarray(truth))
    return {
        "count": len(errors),
        "median_abs_error_deg": round(float(np.median(errors)), 2),
        "p90_abs_error_deg": round(float(np.percentile(errors, 90)), 2),
        "mean_abs_error_deg": round(float(np.mean(errors)), 2),
    }


def cross_validate(data: RollFeatures, projected: np.ndarray, photos: int, recipe: RollRecipe) -> dict[str, Any]:
    """Out-of-fold rolls of every rolled crop (folds by photo: all copies of a photo are held out together).
    `projected`: the rows' projected features (the projection is unsupervised: fitted once on all rows)."""
    fold = np.random.default_rng(recipe.seed).permutation(photos) % recipe.folds
    predicted = np.zeros(len(data.roll) // 2, dtype=np.float32)
    for k in range(recipe.folds):
        train_rows = fold[data.photo] != k
        test_rows = fold[data.photo] == k
        head = train_roll_head(projected[train_rows], data.roll[train_rows], recipe)
        predicted[np.flatnonzero(test_rows[0::2])] = predict_rolls(head, projected[test_rows])
        log.warning("roll fold %d/%d done", k + 1, recipe.folds)
    truth = data.roll[0::2]
    return {"predicted": predicted, "truth": truth, "summary": error_summary(predicted, truth)}


def export_roll_head(
    head: RollHead, model_dir: Path, spec: CropSpec, recipe: RollRecipe, entry: dict[str, Any]
) -> None:
    state = {key: value.half() if value.is_floating_point() else value for key, value in head.state_dict().items()}
    torch.save(state, model_dir / WEIGHTS_FILE)
    card_path = model_dir / "model.json"
    card = json.loads(card_path.read_text())
    card[MODEL_CARD_KEY] = {
        "weights": WEIGHTS_FILE,
        "crop_size": spec.size,  # the view classifier's crop it reads (RollReader.fits)
        "context": spec.context,
        "head": {"channels": recipe.channels, "grid": head.grid, "dropout": recipe.dropout},
        "scale_deg": ROLL_SCALE_DEG,
        **entry,
    }
    card_path.write_text(json.dumps(card, indent=2) + "\n")


def training_photos(image_dir: Path, annotations: Path, limit: int | None) -> tuple[list[Path], list[np.ndarray]]:
    outlines = car_outlines(annotations)
    names = sorted((n for n in outlines if (image_dir / n).is_file()), key=lambda n: (len(n), n))[:limit]
    return [image_dir / n for n in names], [outlines[n] for n in names]


def train_roll(
    model_dir: Path,
    image_dir: Path,
    annotations: Path | None = None,
    recipe: RollRecipe | None = None,
    limit: int | None = None,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Cross-validate, then train on every photo and write the roll head into the model directory (its crop is
    the view classifier's, read from the same model.json). Returns the cross-validated summary."""
    recipe = recipe or RollRecipe()
    card = json.loads((Path(model_dir) / "model.json").read_text())
    view = card.get("view_classifier")
    if not isinstance(view, dict):
        raise ValueError(f"{model_dir}: no view_classifier entry; the roll head reads its trunk and crop")
    spec = CropSpec(size=int(view["crop_size"]), context=float(view["context"]))
    annotations = annotations or Path(image_dir).parent / "annotations.json"
    images, outlines = training_photos(Path(image_dir), annotations, limit)
    if cache is not None and cache.is_file():
        stored = np.load(cache)
        data = RollFeatures(stored["features"], stored["photo"], stored["roll"])
    else:
        data = build_roll_features(images, outlines, spec, recipe)
        if cache is not None:
            np.savez(cache, features=data.features, photo=data.photo, roll=data.roll)
    projection = fit_projection(data.features, recipe.projected, recipe.seed)
    projected = projection.apply(data.features)
    cv = cross_validate(data, projected, len(images), recipe) if recipe.folds >= 2 else None
    head = fold_projection(train_roll_head(projected, data.roll, recipe), projection)
    entry = {
        "what": "camera roll of the photo from the main car's crop: a small head on the view classifier's frozen "
        "ImageNet MobileNetV2 trunk features (the same crop, the same trunk pass), mirror-averaged",
        "trunk": "view_classifier",
        "training_data": f"{len(images)} Car Parts training photos (near level), each turned by rolls drawn in "
        f"+-{recipe.max_roll_deg:g} degrees ({recipe.rolls_per_photo} per photo, {recipe.level_share:.0%} left "
        "level), cut to a full frame, resized, JPEG-compressed, relit; each also mirrored with the roll negated. "
        "The label is the applied roll: no roll annotations",
        "recipe": asdict(recipe),
        "cross_validated": None if cv is None else {"folds": recipe.folds, "photos": len(images), **cv["summary"]},
        "sign": "positive = the scene appears turned counter-clockwise (the camera was turned clockwise)",
    }
    export_roll_head(head, Path(model_dir), spec, recipe, entry)
    return {} if cv is None else cv["summary"]
