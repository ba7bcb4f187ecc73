"""Learned eight-way view of the main car: what a person would call the photo (front, front_left, ...).

The part-layout rule in `service.postprocess` is geometry; on close-range three-quarter photos its evidence (a
big front, a foreshortened side) pulls the yaw toward the axis, and a detector's missed side parts do the same.
A classifier trained on photos labelled by eye learns the convention people use instead. It looks at the main
car's crop through an ImageNet MobileNetV2 trunk (frozen, or with its last blocks fine-tuned in a copy: `ViewNet`)
and a small trained head that keeps the 7x7 spatial layout (where the grille, the wheels, the glass are),
averages the photo with its mirror image (a mirrored photo shows the mirrored view) and divides the logits by a
temperature fitted on held-out photos, so the top probability is a calibrated chance of being right.

A model directory enables it with a `view_classifier` entry in `model.json` (written by
`models/view_training.py`, or `models/view_finetune.py` with a `tuned_from` block); without one the backend gives
no view probabilities and the rule decides alone. A `roll_head` entry adds the camera roll, read from the same
pass over the frozen trunk (`roll.py`).
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from torchvision.models import mobilenet_v2

from ..modeling.inference import prepare_for_inference
from ..modeling.networks import Network, NetworkBuilder, TorchNetwork
from ..postprocess import VIEWS
from .roll import TRUNK_CHANNELS, RollReader

MODEL_CARD_KEY = "view_classifier"
log = logging.getLogger("service.backends.view_classifier")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255.0
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255.0
PAD_VALUE = 114  # grey where the square crop leaves the photo: neutral after normalisation
# MIRRORED_INDEX[v]: the view a mirrored photo of view v shows. View i is centred on azimuth i * 45 and a mirror
# image negates the azimuth (front_left <-> front_right, left <-> right), so view i becomes view -i.
MIRRORED_INDEX: tuple[int, ...] = tuple((-index) % len(VIEWS) for index in range(len(VIEWS)))


@dataclass(frozen=True)
class CropSpec:
    size: int = 224  # pixels of the square network input
    context: float = 1.15  # square side / longer side of the car box: a little road around the car

    def square(self, box: tuple[float, float, float, float]) -> tuple[float, float, float]:
        """(centre x, centre y, side) of the square crop around a box."""
        x0, y0, x1, y1 = box
        side = max(x1 - x0, y1 - y0, 1.0) * self.context
        return (x0 + x1) / 2.0, (y0 + y1) / 2.0, side


def crop_car(rgb: np.ndarray, box: tuple[float, float, float, float], spec: CropSpec) -> np.ndarray:
    """Square `spec.size` RGB crop centred on the box, aspect kept (a side view's length is a cue), grey outside."""
    cx, cy, side = spec.square(box)
    height, width = rgb.shape[:2]
    x0, y0 = round(cx - side / 2.0), round(cy - side / 2.0)
    side_px = max(1, round(side))
    canvas = np.full((side_px, side_px, 3), PAD_VALUE, dtype=np.uint8)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(width, x0 + side_px), min(height, y0 + side_px)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    # INTER_AREA averages when shrinking (most crops), so fine texture does not alias into the features.
    interpolation = cv2.INTER_AREA if side_px > spec.size else cv2.INTER_LINEAR
    return cv2.resize(canvas, (spec.size, spec.size), interpolation=interpolation)


def to_tensor(crops: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float, ImageNet-normalised."""
    normalised = (crops.astype(np.float32) - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(normalised.transpose(0, 3, 1, 2)))


class ViewHead(nn.Module):
    """1x1 conv to a few channels per cell, then one linear layer over the whole grid: keeps WHERE things are."""

    def __init__(self, channels: int = 32, grid: int = 7, dropout: float = 0.3) -> None:
        super().__init__()
        self.grid = grid  # the trunk's output side: crop size / 32
        self.reduce = nn.Sequential(nn.Dropout(dropout / 2.0), nn.Conv2d(TRUNK_CHANNELS, channels, 1), nn.ReLU())
        self.classify = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels * grid * grid, len(VIEWS)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classify(self.reduce(features))


class ViewNet(nn.Module):
    """The frozen ImageNet trunk and the view head; with `tuned_from` = k, the head reads a fine-tuned copy of the
    trunk's blocks from k on (`tuned`) instead of the frozen ones, which stay for what else reads the frozen
    features (the roll head): blocks before k run once for both."""

    def __init__(self, head: dict[str, Any] | None = None, tuned_from: int | None = None) -> None:
        super().__init__()
        self.trunk = mobilenet_v2(weights=None).features
        self.tuned_from = tuned_from
        self.tuned = copy.deepcopy(self.trunk[tuned_from:]) if tuned_from is not None else None
        self.head = ViewHead(**(head or {}))

    def features(self, images: torch.Tensor, frozen_too: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(what the view head reads, the frozen trunk's output where `frozen_too`, else None)."""
        if self.tuned is None:
            frozen = self.trunk(images)
            return frozen, frozen
        shared = self.trunk[: self.tuned_from](images)
        return self.tuned(shared), self.trunk[self.tuned_from :](shared) if frozen_too else None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images, frozen_too=False)[0])


def mirror_averaged_logits(logits: torch.Tensor) -> torch.Tensor:
    """Rows 2k (photo) and 2k+1 (its mirror image) -> one row per photo in the photo's own view order."""
    photo, mirrored = logits[0::2], logits[1::2]
    return (photo + mirrored[:, list(MIRRORED_INDEX)]) / 2.0


def softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    scaled = logits / max(temperature, 1e-3)
    scaled = scaled - scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class CarReading:
    """What the crop of the main car tells: its view probabilities and the camera roll (None without a roll head)."""

    view_probs: tuple[float, ...]
    roll_deg: float | None


class CarReadingNet(nn.Module):
    """A crop and its mirror image -> the view logits and, with a roll head, its raw output: one trunk pass, one
    network for the engine to compile."""

    def __init__(self, net: ViewNet, roll_head: nn.Module | None) -> None:
        super().__init__()
        self.net = net
        self.roll_head = roll_head

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        view_features, frozen = self.net.features(images, frozen_too=self.roll_head is not None)
        logits = self.net.head(view_features)
        return (logits,) if self.roll_head is None or frozen is None else (logits, self.roll_head(frozen))


class ViewClassifier:
    """Loads the `view_classifier` entry of a model directory; `read(rgb, box)` -> the 8 view probabilities and the
    camera roll when the directory has a roll head (`roll.py`)."""

    def __init__(
        self,
        model_dir: Path,
        entry: dict[str, Any],
        device: str = "cpu",
        build: NetworkBuilder | None = None,
        roll: RollReader | None = None,
    ) -> None:
        self.spec = crop_spec(entry)
        self.temperature = float(entry["temperature"])
        self.device = device
        self.net = ViewNet(entry.get("head"), tuned_from(entry))
        state = torch.load(Path(model_dir) / str(entry["weights"]), map_location="cpu", weights_only=True)
        self.net.load_state_dict({key: value.float() for key, value in state.items()})
        self.net.to(device)
        prepare_for_inference(self.net)  # batch norms folded, NHWC: see service/modeling/inference.py
        self.roll = roll
        reading = CarReadingNet(self.net, None if roll is None else roll.head)
        # The photo and its mirror image, one call: the only input shape this network ever sees.
        example = torch.zeros(2, 3, self.spec.size, self.spec.size)
        # Called once a photo, after the detector: its working memory (~10 MB) is freed between calls.
        self.network: Network = (
            TorchNetwork(reading) if build is None else build(reading, example, example.shape, keep_memory=False)
        )

    @classmethod
    def from_card(
        cls, model_dir: Path, card: dict[str, Any], device: str = "cpu", build: NetworkBuilder | None = None
    ) -> ViewClassifier | None:
        entry = card.get(MODEL_CARD_KEY)
        if not isinstance(entry, dict):
            return None
        spec = crop_spec(entry)
        roll = RollReader.from_card(model_dir, card, device)
        if roll is not None and not roll.fits(spec.size, spec.context):
            # A view classifier retrained on another crop: the roll head's features would not match. No roll
            # (retrain it with `carpose train-roll`) rather than a wrong one.
            log.warning("roll head trained on another crop than the view classifier's: no roll_deg")
            roll = None
        return cls(model_dir, entry, device, build, roll)

    def read(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> CarReading:
        """View probabilities and camera roll from one pass over the crop and its mirror image."""
        crop = crop_car(rgb, box, self.spec)
        outputs = self.network(to_tensor(np.stack([crop, crop[:, ::-1]])).to(device=self.device))
        logits = mirror_averaged_logits(outputs[0].float()).cpu().numpy()[0]
        probs = tuple(float(p) for p in softmax(logits, self.temperature) if math.isfinite(p))
        roll = None if self.roll is None else self.roll.degrees(outputs[1])
        return CarReading(probs, roll)


def tuned_from(entry: dict[str, Any]) -> int | None:
    """The first trunk block a `view_classifier` entry fine-tuned (None: the head reads the frozen trunk)."""
    value = entry.get("tuned_from")
    return None if value is None else int(value)


def crop_spec(entry: dict[str, Any]) -> CropSpec:
    """The crop a `view_classifier` entry was trained on."""
    return CropSpec(size=int(entry["crop_size"]), context=float(entry["context"]))
