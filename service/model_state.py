"""The Detectron2 model's life in the service: loading (in the background), warm-up, ready or failed.

Loading runs on a thread started by the app's lifespan, so the server accepts connections at once:
`/healthz` answers while the weights load, `/readyz` and `/pose` answer 503 until the warm-up inference
has run (the first call through a fresh model is several times slower than the rest).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Literal

import numpy as np

from .exceptions import public_message
from .gate import batch_policy
from .metrics import MODEL_ENGINE, MODEL_LOAD_SECONDS
from .settings import Settings

if TYPE_CHECKING:
    from .backends.detectron import DetectronBackend

log = logging.getLogger("service.model")

Status = Literal["loading", "ok", "failed"]


def warmup_image(size: int = 512) -> np.ndarray:
    """A car-ish test card: enough structure that every head of the model runs."""
    rng = np.random.default_rng(0)
    image = rng.integers(90, 160, size=(size, size, 3), dtype=np.uint8)
    image[size // 3 : 2 * size // 3, size // 8 : 7 * size // 8] = (40, 60, 150)
    for cx in (size // 4, 3 * size // 4):
        yy, xx = np.ogrid[:size, :size]
        image[(yy - 2 * size // 3) ** 2 + (xx - cx) ** 2 < (size // 12) ** 2] = 20
    return image


def warm_up(backend: DetectronBackend, settings: Settings) -> None:
    """The first calls through a fresh model are several times slower than the rest: make them before /readyz.

    On a GPU, also the shapes a service meets most (square and 4:3 landscape photos) at a single image and at a
    full batch: CUDA kernels load lazily and cudnn.benchmark times its algorithms once per input shape. OpenVINO
    prepares its kernels at the first call of each input shape: the same two shapes.
    """
    backend.detect_array(warmup_image())
    on_gpu = backend.device.startswith("cuda")
    if not (on_gpu or backend.engine.compiled):  # OpenVINO prepares its kernels once per new input shape
        return
    batch = batch_policy(settings, backend.device).max_size
    for width in (512, 683):
        image = warmup_image(width)[: 512 if width > 512 else width]
        backend.detect_array(image)
        if batch > 1:
            backend.detect_arrays([image] * batch)


class ModelState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.status: Status = "loading"
        self.error: str | None = None
        self.backend: DetectronBackend | None = None  # once loaded
        self.load_seconds: float | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._load, name="model-loader", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.status == "ok"

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            import torch

            if self.settings.torch_threads > 0:
                torch.set_num_threads(self.settings.torch_threads)
            from .backends.detectron import CudaOptions, DetectronBackend

            s = self.settings
            cuda = CudaOptions(fp16=s.fp16, cudnn_benchmark=s.cudnn_benchmark, pin_memory=s.pin_memory)
            backend = DetectronBackend.from_settings(s, s.model_dir, s.device, cuda)
            if s.warmup:
                warm_up(backend, s)
        except Exception as exc:  # the service stays up and reports the failure on /readyz
            log.exception("loading the model from %s failed", self.settings.model_dir)
            self.error = public_message(f"{type(exc).__name__}: {exc}")  # answered by /readyz: no server paths
            self.status = "failed"
            return
        self.backend = backend
        self.load_seconds = time.perf_counter() - started
        MODEL_LOAD_SECONDS.set(self.load_seconds)
        MODEL_ENGINE.labels(engine=backend.engine.name).set(1)
        log.info(
            "model %s %s ready on %s (engine %s) in %.1f s",
            backend.card.name,
            backend.card.version,
            backend.device,
            backend.engine.name,
            self.load_seconds,
        )
        self.status = "ok"
