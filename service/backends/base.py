"""What every backend offers the request pipeline."""

from __future__ import annotations

from typing import Protocol

from ..imaging import DecodedImage
from ..postprocess import Detection


class DetectionBackend(Protocol):
    name: str  # "detectron2" or "rekognition": the `backend` field of responses and a metrics label

    def info(self) -> dict[str, str]:
        """`{"name": ..., "version": ...}` of the model behind this backend."""
        ...

    def detect(self, image: DecodedImage) -> list[Detection]:
        """Blocking call; the pipeline runs it off the event loop."""
        ...
