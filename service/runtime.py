"""The synchronous runtime: one image (upload bytes or an RGB array) -> the pose of its main car.

No HTTP and no metrics here. The HTTP pipeline (`service.api.pipeline`) runs the same steps, `decode`, `detect`
and `pose`, with its admission and limiters between them; `carpose predict`, `carpose eval` and `carpose turntable`
call `predict`. Failures are `PoseError`s with a stable code (the edge maps it to a status).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .backends.base import DetectionBackend
from .backends.registry import spec_named
from .exceptions import PoseError
from .framing import extent_of, prominent_other_cars, whole_car
from .imaging import DecodedImage, decode_upload
from .margin import FrameMargin, detect_with_margin
from .postprocess import DEFAULT_CONFIG, Detection, PoseConfig, PoseEstimate, estimate_pose, select_main_car
from .quality import Quality, QualityThresholds, assess
from .settings import DEFAULT_MAX_IMAGE_PIXELS, DEFAULT_MAX_UPLOAD_BYTES, Settings


class Stopwatch:
    """Milliseconds per stage, and the seconds of the last lap (the HTTP edge also feeds them to Prometheus)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self._mark = self.started
        self.timings_ms: dict[str, float] = {}

    def lap(self, stage: str) -> float:
        now = time.perf_counter()
        seconds = now - self._mark
        self._mark = now
        self.timings_ms[stage] = round(seconds * 1000.0, 2)
        return seconds

    def total(self) -> dict[str, float]:
        return {**self.timings_ms, "total": round((time.perf_counter() - self.started) * 1000.0, 2)}


@dataclass(frozen=True)
class Prediction:
    pose: PoseEstimate
    image: DecodedImage  # the pixels the pose was computed on (`image.scale_x/y` map them to the upload)
    detections: list[Detection]  # everything the backend found, before the pose's cleaning
    timings_ms: dict[str, float]
    quality: Quality | None = None  # None without a car


def image_from_array(rgb: np.ndarray) -> DecodedImage:
    """An HxWx3 uint8 RGB array as the runtime's image, used at its own size (no reduction, no EXIF)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise PoseError("invalid_image", f"expected an HxWx3 uint8 RGB array, got {rgb.shape} {rgb.dtype}")
    return DecodedImage(rgb=np.ascontiguousarray(rgb), format="ARRAY", data=b"", exif_rotated=False)


@dataclass(frozen=True)
class Runtime:
    """A loaded backend, the pose settings and the upload limits: everything a prediction needs."""

    backend: DetectionBackend
    config: PoseConfig = DEFAULT_CONFIG
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    quality_thresholds: QualityThresholds = field(default_factory=QualityThresholds.defaults)
    # Grey margin around tight photos for detection (service.margin); share 0 = the photo as it is.
    frame_margin: FrameMargin = field(default_factory=FrameMargin)

    @classmethod
    def from_settings(cls, backend: DetectionBackend, settings: Settings) -> Runtime:
        config = PoseConfig(score_threshold=settings.score_threshold, min_confidence=settings.min_confidence)
        return cls(
            backend,
            config,
            settings.max_upload_bytes,
            settings.max_image_pixels,
            QualityThresholds.from_settings(settings),
            FrameMargin(
                settings.frame_margin if spec_named(backend.name).frame_margin else 0.0, settings.frame_margin_mode
            ),
        )

    def decode(self, data: bytes) -> DecodedImage:
        """Untrusted upload bytes -> EXIF-corrected RGB at most the backend's input size (PoseError if refused)."""
        return decode_upload(data, self.max_upload_bytes, self.max_image_pixels, self.backend.working_size())

    def detect(self, image: DecodedImage) -> list[Detection]:
        """The backend's detections of one image (its `detect`), in the image's own pixels (blocking)."""
        return detect_with_margin(lambda images: [self.backend.detect(i) for i in images], [image], *self._framing())[0]

    def detect_batch(self, images: Sequence[DecodedImage]) -> list[list[Detection]]:
        """The backend's detections of each image (its `detect_batch`), in each one's own pixels (blocking); tight
        photos detected again with a grey margin around them (service.margin)."""
        return detect_with_margin(self.backend.detect_batch, images, *self._framing())

    def _framing(self) -> tuple[FrameMargin, Callable[[Sequence[Detection], tuple[int, int]], Detection | None]]:
        return self.frame_margin, lambda detections, size: select_main_car(detections, size, self.config)

    def pose(
        self, detections: list[Detection], image: DecodedImage, min_confidence: float | None = None
    ) -> PoseEstimate:
        """The pose on the image's own pixels (masks and boxes line up there; every ratio used is scale-free).
        `min_confidence`: this call's view confidence floor; None keeps the runtime's."""
        config = self.config if min_confidence is None else replace(self.config, min_confidence=min_confidence)
        return estimate_pose(detections, (image.width, image.height), config)

    def quality(self, image: DecodedImage, pose: PoseEstimate) -> Quality | None:
        """Framing, size, sharpness and exposure of the posed car, on the same pixels as the pose; whether the
        whole car is shown and no other car competes with it (service.framing)."""
        quality = assess(image.rgb, pose.car, self.quality_thresholds)
        if quality is None:
            return None
        return replace(
            quality,
            whole_car=whole_car(extent_of(self._photo_pass_pose(pose, image), (image.width, image.height))),
            other_cars=prominent_other_cars(pose, self.quality_thresholds.other_car_min_size),
        )

    def _photo_pass_pose(self, pose: PoseEstimate, image: DecodedImage) -> PoseEstimate:
        """The pose of the photo's own detection pass where a grey-margin pass replaced it (service.margin): what
        `whole_car` reads. Its view at any confidence: it only tells which side the car box's shape is seen from."""
        if pose.car is None or pose.car.photo_pass is None:
            return pose
        return self.pose(list(pose.car.photo_pass), image, min_confidence=0.0)

    def predict(self, image: bytes | np.ndarray, min_confidence: float | None = None) -> Prediction:
        clock = Stopwatch()
        decoded = self.decode(image) if isinstance(image, bytes) else image_from_array(image)
        clock.lap("decode")
        detections = self.detect(decoded)
        clock.lap("inference")
        pose = self.pose(detections, decoded, min_confidence)
        quality = self.quality(decoded, pose)
        clock.lap("postprocess")
        return Prediction(pose, decoded, detections, clock.total(), quality)
