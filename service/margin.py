"""A grey margin around a tight photo before detection, and the detections mapped back to the photo's own pixels.

Web photos are often framed tight to the car. The detector was trained on Car Parts photos with road around the
car, and on a tight photo it sees the car's ends against the image border: parts there are missed or mislabelled
and the part rule's yaw drifts (issue 19; the figures are in docs/views.md). So the runtime detects again on a copy
of the decoded pixels with `share` of each side added in neutral grey around it, maps every box and mask back into
the photo and drops what lies wholly in the margin. Everything after detection (the pose, quality, framing, the
rendered image, the response's boxes) sees only the photo's own pixels, so a car cut by the photo's border is
still cut: the margin never makes it look in frame.

Mode `tight` (the default) adds the margin only where the first pass's main car comes within `TIGHT_ROOM` of a
border: a photo with road around its car is answered by one pass as before (on those the margin shrinks the car in
the model's fixed-size input and moved the turntable's yaw), a tight one costs a second pass, whose detections
replace the first's but for the camera roll and the framing verdicts, which read the photo's own pass
(`with_photo_readings`). Mode `always` detects once, on the canvas: one pass for every photo, for callers whose
photos are all tight.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from .imaging import DecodedImage
from .postprocess import CAR_LABEL, Detection
from .postprocess.types import Box
from .settings import DEFAULT_FRAME_MARGIN, DEFAULT_FRAME_MARGIN_MODE

# The mask head's output grid over a box (Detectron2's 14 x 14 pooled mask, upsampled twice): one cell of it is
# the mask's resolution at a border.
MASK_GRID = 28

# The view classifier's own fill outside the photo (service/backends/view_classifier.PAD_VALUE): neutral grey,
# about the ImageNet mean, so the margin reads as "nothing here" to both networks.
MARGIN_GREY = 114


@dataclass(frozen=True)
class Framed:
    """A photo on its grey canvas: the canvas, and where the photo sits on it."""

    canvas: DecodedImage
    left: int
    top: int
    width: int  # the photo's own size
    height: int


def with_margin(image: DecodedImage, share: float) -> Framed:
    """`image` on a grey canvas `share` x its width (height) wider (taller) on each side."""
    height, width = image.height, image.width
    left, top = round(share * width), round(share * height)
    canvas = np.full((height + 2 * top, width + 2 * left, 3), MARGIN_GREY, dtype=np.uint8)
    canvas[top : top + height, left : left + width] = image.rgb
    return Framed(replace(image, rgb=canvas), left, top, width, height)


def to_photo(detections: Sequence[Detection], framed: Framed) -> list[Detection]:
    """Detections on the canvas -> on the photo: boxes shifted and clipped to it, masks cut to it; a detection
    with less than a pixel inside the photo (wholly in the margin) is dropped."""
    left, top, width, height = framed.left, framed.top, framed.width, framed.height
    mapped: list[Detection] = []
    for detection in detections:
        x0, y0, x1, y1 = detection.box
        box = (
            min(max(x0 - left, 0.0), float(width)),
            min(max(y0 - top, 0.0), float(height)),
            min(max(x1 - left, 0.0), float(width)),
            min(max(y1 - top, 0.0), float(height)),
        )
        if box[2] - box[0] < 1.0 or box[3] - box[1] < 1.0:
            continue
        mask = detection.mask
        if mask is not None:
            mask = np.ascontiguousarray(mask[top : top + height, left : left + width])
            if detection.label == CAR_LABEL:
                mask = carried_to_border(mask, detection.box, framed)
        mapped.append(replace(detection, box=box, mask=mask))
    return mapped


def carried_to_border(mask: np.ndarray, canvas_box: Box, framed: Framed) -> np.ndarray:
    """The car's mask (in the photo) with its pixels within one mask cell of a border carried to that border, on
    each side where the car's box on the canvas runs past the photo: the car continues beyond it. The mask head
    paints a coarse grid over the box that fades a few pixels short of a hard photo edge, and quality's cut test
    (`quality.cut_sides`) looks for mask pixels in a 1 % strip at the border: without this a car cut by the photo's
    border would look in frame. Only the car's mask: the parts' masks feed the pose's area cue as they are."""
    x0, y0, x1, y1 = canvas_box
    cell_x = min(framed.width, max(1, math.ceil((x1 - x0) / MASK_GRID)))
    cell_y = min(framed.height, max(1, math.ceil((y1 - y0) / MASK_GRID)))
    mask = mask.astype(bool, copy=True)
    if x0 < framed.left:  # a pixel in the strip fills the strip from it to the border
        mask[:, :cell_x] = np.logical_or.accumulate(mask[:, :cell_x][:, ::-1], axis=1)[:, ::-1]
    if x1 > framed.left + framed.width:
        mask[:, -cell_x:] = np.logical_or.accumulate(mask[:, -cell_x:], axis=1)
    if y0 < framed.top:
        mask[:cell_y] = np.logical_or.accumulate(mask[:cell_y][::-1], axis=0)[::-1]
    if y1 > framed.top + framed.height:
        mask[-cell_y:] = np.logical_or.accumulate(mask[-cell_y:], axis=0)
    return mask


DetectBatch = Callable[[Sequence[DecodedImage]], list[list[Detection]]]
MainCar = Callable[[Sequence[Detection], tuple[int, int]], Detection | None]

# A photo is tight when its main car's box comes closer than this share of the image's width (height) to the left
# or right (top or bottom) border: 95 % of the development set's web photos, 45 % of the Car Parts test photos, 8 of
# the 64 turntable photos. Looked at on the development set (docs/views.md): 0.01 and 0.02 keep part of the gain.
TIGHT_ROOM = 0.05


@dataclass(frozen=True)
class FrameMargin:
    """POSE_FRAME_MARGIN (grey share of each side; 0 = off) and POSE_FRAME_MARGIN_MODE (tight or always)."""

    share: float = DEFAULT_FRAME_MARGIN
    mode: Literal["tight", "always"] = DEFAULT_FRAME_MARGIN_MODE


def is_tight(box: Box, size: tuple[int, int], room: float = TIGHT_ROOM) -> bool:
    width, height = size
    x0, y0, x1, y1 = box
    return min(x0 / width, y0 / height, (width - x1) / width, (height - y1) / height) < room


def detect_with_margin(
    detect_batch: DetectBatch, images: Sequence[DecodedImage], margin: FrameMargin, main_car: MainCar
) -> list[list[Detection]]:
    """`detect_batch` of the images, each in its own pixels; with the margin where `margin` says (module doc).
    `main_car`: the car the pose will use (the tight test reads its box)."""
    if margin.share <= 0.0:
        return detect_batch(images)
    if margin.mode == "always":
        return _on_canvas(detect_batch, images, margin.share)
    found = detect_batch(images)
    tight = []
    for index, (image, detections) in enumerate(zip(images, found, strict=True)):
        car = main_car(detections, (image.width, image.height))
        if car is not None and is_tight(car.box, (image.width, image.height)):
            tight.append(index)
    if tight:
        again = _on_canvas(detect_batch, [images[i] for i in tight], margin.share)
        for index, detections in zip(tight, again, strict=True):
            found[index] = with_photo_readings(found[index], detections)
    return found


def with_photo_readings(first: Sequence[Detection], second: list[Detection]) -> list[Detection]:
    """The second pass's detections, its main car carrying what the photo itself tells better: the first pass's
    camera roll, and the first pass's detections for the framing verdicts.

    The roll head (trained on photos, `service/backends/roll.py`) reads a crop around the car, and on the canvas
    that crop shows the grey margin and the photo's own edges: it read a -15 deg turn as -6 deg there. On the
    canvas the detector finds more of a cut car's parts (what helps the yaw) and ends it at the photo's edge as if
    it ended there, so half a car looked whole to `quality.whole_car` (91 % of half-car crops flagged instead of
    98 %): the framing verdicts read the photo's own pass (`Runtime.quality`). The view stays the canvas's: on
    tight crops of turntable photos it is the one the margin corrects."""
    reading = next((d for d in first if d.view_probs is not None), None)
    carrier = next((i for i, d in enumerate(second) if d.view_probs is not None), None)
    if reading is None or carrier is None:
        return second
    second = list(second)
    second[carrier] = replace(second[carrier], roll_deg=reading.roll_deg, photo_pass=tuple(first))
    return second


def _on_canvas(detect_batch: DetectBatch, images: Sequence[DecodedImage], share: float) -> list[list[Detection]]:
    framed = [with_margin(image, share) for image in images]
    found = detect_batch([f.canvas for f in framed])
    return [to_photo(detections, f) for detections, f in zip(found, framed, strict=True)]
