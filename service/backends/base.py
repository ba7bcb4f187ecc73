"""What every backend offers the request pipeline and the runtime: the whole contract, stated once.

The pipeline, the runtime and the HTTP edge call these members and nothing else (no probing for optional
ones): a backend that cannot do something says so here (`supports_batch`, `credentials_available`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..imaging import DecodedImage, WorkingSize
from ..postprocess import Detection


class DetectionBackend(Protocol):
    name: str  # "detectron2" or "rekognition": the `backend` field of responses and a metrics label
    # Where its calls run: "cpu", "cuda" or "cuda:N" for a local model (the batching default follows it), "remote"
    # for an upstream service.
    device: str
    # `detect_batch` is one call for several images, so the pipeline's dynamic batching pays off (Detectron2). A
    # remote backend answers each image by its own request: its images run side by side on the gate's workers.
    supports_batch: bool

    def info(self) -> dict[str, str]:
        """`{"name": ..., "version": ...}` of the model behind this backend."""
        ...

    def working_size(self) -> WorkingSize | None:
        """The pixels worth decoding for this backend (None: the full image)."""
        ...

    def detect(self, image: DecodedImage) -> list[Detection]:
        """Blocking call; the pipeline runs it off the event loop."""
        ...

    def detect_batch(self, images: Sequence[DecodedImage]) -> list[list[Detection]]:
        """`detect` of each image, in order (blocking). Used by the pipeline only where `supports_batch`."""
        ...

    def credentials_available(self) -> bool:
        """It can be called now as far as credentials go (False: GET /backends reports it not ready)."""
        ...
