"""Camera roll of a photo, read from the main car's crop by a small head on the view classifier's trunk features.

`tilt_deg` (the wheel line's slope) follows perspective: level photos of diagonal views read -23 and -35
degrees, so it cannot tell a crooked photo. This head was trained self-supervised (`models/roll_training.py`):
near-level photos turned by known angles, so it learned what an upright car and its surroundings look like at
each roll. It reads the frozen trunk's 7x7x1280 feature map of the same crop in the view classifier's network (with
a fine-tuned view trunk, its frozen blocks run beside the tuned copy), so the roll costs little more per photo,
and it averages the photo's reading with its mirror image's (negated: a mirror image turns the other way).

Sign, stated once (docs/api.md repeats it): `roll_deg` > 0 when the scene appears turned counter-clockwise in
the photo (its horizon rises to the right), i.e. the camera was turned clockwise; turning the photo clockwise by
`roll_deg` levels it. The same counter-clockwise-positive convention as `tilt_deg`.

A model directory enables it with a `roll_head` entry in `model.json`; without one (or without a view
classifier, whose trunk it reads) there is no roll.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

MODEL_CARD_KEY = "roll_head"
TRUNK_CHANNELS = 1280  # MobileNetV2's last feature map (the view classifier's trunk output)
ROLL_SCALE_DEG = 30.0  # the head answers roll / this: targets of order one


class RollHead(nn.Module):
    """1x1 conv to a few channels per cell, then one linear layer over the whole grid to one number (roll/scale):
    it keeps WHERE things are in the crop, which is what a turn changes. `in_channels` other than the trunk's is for
    training on projected features (`models/roll_training.py` folds the projection back in before export)."""

    def __init__(
        self, channels: int = 16, grid: int = 7, dropout: float = 0.3, in_channels: int = TRUNK_CHANNELS
    ) -> None:
        super().__init__()
        self.grid = grid
        self.dropout = dropout
        self.reduce = nn.Sequential(nn.Conv2d(in_channels, channels, 1), nn.ReLU())
        self.regress = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels * grid * grid, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.regress(self.reduce(features))


def mirror_averaged_roll(raw: torch.Tensor, scale_deg: float) -> torch.Tensor:
    """Rows 2k (photo) and 2k+1 (its mirror image) of the head's (N, 1) output -> degrees, one per photo."""
    flat = raw.reshape(-1) * scale_deg
    return (flat[0::2] - flat[1::2]) / 2.0


class RollReader:
    """The `roll_head` entry of a model directory: its head (run by the view classifier's network on the trunk's
    features) and `degrees(raw)` from that head's output."""

    def __init__(self, model_dir: Path, entry: dict[str, Any], device: str = "cpu") -> None:
        self.scale_deg = float(entry.get("scale_deg", ROLL_SCALE_DEG))
        # The crop it was trained on: its features mean nothing for another size or margin (`fits`).
        self.crop = (int(entry["crop_size"]), float(entry["context"]))
        self.head = RollHead(**(entry.get("head") or {}))
        state = torch.load(Path(model_dir) / str(entry["weights"]), map_location="cpu", weights_only=True)
        self.head.load_state_dict({key: value.float() for key, value in state.items()})
        self.head.to(device).eval()

    @classmethod
    def from_card(cls, model_dir: Path, card: dict[str, Any], device: str = "cpu") -> RollReader | None:
        entry = card.get(MODEL_CARD_KEY)
        return None if not isinstance(entry, dict) else cls(model_dir, entry, device)

    def fits(self, crop_size: int, context: float) -> bool:
        """It was trained on the features of this crop (the view classifier's `CropSpec`)."""
        return self.crop == (crop_size, context)

    def degrees(self, raw: torch.Tensor) -> float | None:
        """The head's raw output for a crop and its mirror image (2, 1) -> the photo's roll in degrees (the head
        runs inside the view classifier's network, on its trunk features)."""
        roll = float(mirror_averaged_roll(raw.float(), self.scale_deg)[0])
        return round(roll, 1) if math.isfinite(roll) else None
