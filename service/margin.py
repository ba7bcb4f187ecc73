"""A grey margin around the photo before detection, and the detections mapped back to the photo's own pixels.

Web photos are often framed tight to the car. The detector and the view classifier were trained on Car Parts
photos with road around the car, and on a tight photo they see the car's ends against the image border: parts
there are missed or mislabelled and the yaw drifts (issue 19; the figures are in docs/views.md). So the runtime
detects on a copy of the decoded pixels with `share` of each side added in neutral grey around it, then maps every
box and mask back into the photo and drops what lies wholly in the margin. Everything after detection (the pose,
quality, framing, the rendered image, the response's boxes) sees only the photo's own pixels, so a car cut by the
photo's border is still cut: the margin never makes it look in frame.

The canvas is larger than the decoded photo, but the model resizes its input to a fixed shortest edge anyway, so
the cost is the copy and the larger mask paste, not a larger model input (docs/views.md, "Latency").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from .imaging import DecodedImage
from .postprocess import Detection

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
        mapped.append(replace(detection, box=box, mask=mask))
    return mapped


DetectBatch = Callable[[Sequence[DecodedImage]], list[list[Detection]]]


def detect_with_margin(
    detect_batch: DetectBatch, images: Sequence[DecodedImage], share: float
) -> list[list[Detection]]:
    """`detect_batch` of the images, each on its grey canvas, answered in each photo's own pixels (share 0: as is)."""
    if share <= 0.0:
        return detect_batch(images)
    framed = [with_margin(image, share) for image in images]
    found = detect_batch([f.canvas for f in framed])
    return [to_photo(detections, f) for detections, f in zip(found, framed, strict=True)]
