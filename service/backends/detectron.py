"""Detectron2 backend: loads a model directory once, then turns images into part detections.

A model directory holds `config.yaml` (a full Detectron2 config), the weights named by `model.json`
(`weights`, fp16 storage is fine: tensors are cast to the model's dtype on load) and `model.json`
(class names, training data, recipe, metrics). `models/` writes these directories.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import transforms as T
from detectron2.modeling import build_model

from ..engines import AUTO, resolve_engine
from ..imaging import DecodedImage, WorkingSize
from ..modeling import carpose_cfg
from ..modeling.compiled_rcnn import CompiledRCNN
from ..modeling.inference import prepare_for_inference
from ..modeling.networks import network_builder
from ..postprocess import CAR_LABEL, Detection, PoseConfig
from ..postprocess.cars import select_main_car
from ..settings import Settings
from .view_classifier import ViewClassifier

log = logging.getLogger("service.backends.detectron")


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    classes: tuple[str, ...]
    weights: str
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, model_dir: Path) -> ModelCard:
        path = model_dir / "model.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: not a carpose model directory")
        data = json.loads(path.read_text())
        return cls(
            name=str(data["name"]),
            version=str(data["version"]),
            classes=tuple(data["classes"]),
            weights=str(data.get("weights", "model_final.pth")),
            extra=data,
        )


@dataclass(frozen=True)
class CudaOptions:
    """GPU-only inference settings (POSE_FP16, POSE_CUDNN_BENCHMARK, POSE_PIN_MEMORY); no-ops on a CPU."""

    fp16: bool = False  # float16 autocast of the model call
    cudnn_benchmark: bool = True  # cuDNN times its algorithms per input shape once, then keeps the fastest
    pin_memory: bool = True  # page-locked host tensors for the copy to the GPU


def _nchw_features(module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """RoIAlign reads NCHW maps: convert the NHWC pyramid once here, not once in each of the box and mask poolers
    (GeneralizedRCNN calls roi_heads(images, features, proposals, targets))."""
    del module
    images, features, *rest = args
    return (images, {name: tensor.contiguous() for name, tensor in features.items()}, *rest)


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("POSE_DEVICE=cuda but no CUDA device is available")
    return requested


class DetectronBackend:
    """The local car-parts model (`DetectionBackend`)."""

    name = "detectron2"
    supports_batch = True  # one model call for a batch of images of one size (see `detect_arrays`)

    def __init__(
        self,
        model_dir: Path,
        device: str = "auto",
        score_threshold: float = 0.5,
        cuda: CudaOptions = CudaOptions(),
        engine: str = AUTO,
        threads: int = 0,
        engine_cache_dir: Path | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.card = ModelCard.read(self.model_dir)
        cfg = carpose_cfg()
        cfg.merge_from_file(str(self.model_dir / "config.yaml"))
        cfg.MODEL.DEVICE = resolve_device(device)
        cfg.MODEL.WEIGHTS = str(self.model_dir / self.card.weights)
        if "MOBILENET" in cfg.MODEL:
            cfg.MODEL.MOBILENET.IMAGENET_INIT = False  # the trained weights replace them
        # Detections below the pose threshold are never used, and each kept one costs a full-image mask paste:
        # filter in the model. Evaluation passes a low threshold to see the whole precision/recall curve.
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = score_threshold
        cfg.freeze()
        self.cfg = cfg
        self.device = cfg.MODEL.DEVICE
        on_gpu = self.device.startswith("cuda")
        self.fp16 = cuda.fp16 and on_gpu
        self.pin_memory = cuda.pin_memory and on_gpu
        if on_gpu:
            torch.backends.cudnn.benchmark = cuda.cudnn_benchmark
        self.model = build_model(cfg)
        self.model.eval()
        DetectionCheckpointer(self.model).load(cfg.MODEL.WEIGHTS)
        # Batch norms folded into the convolutions, NHWC layout: same detections, 1.6x faster on the 2-core VM
        # (docs/views.md, "Latency"). The model object is for serving only from here on.
        prepare_for_inference(self.model)
        if hasattr(self.model, "roi_heads"):
            self.model.roi_heads.register_forward_pre_hook(_nchw_features)
        # POSE_ENGINE: what runs the convolutional networks (service/engines.py). `threads`: the compiled
        # networks' own thread count (torch's is process-wide, set by the caller); 0 = every core.
        self.engine = resolve_engine(engine, self.device)
        build = network_builder(self.engine, threads, engine_cache_dir)
        # The compiled engine's model call (its networks reachable for measurements), else the model itself.
        self.compiled: CompiledRCNN | None = CompiledRCNN(self.model, build, threads) if self.engine.compiled else None
        self._run: Any = self.compiled if self.compiled is not None else self.model
        self.input_format = cfg.INPUT.FORMAT
        self.resize = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
        self.classes = self.card.classes
        self.score_threshold = score_threshold
        # The learned view of the main car, when the model directory has one (see view_classifier.py).
        self.view_classifier = ViewClassifier.from_card(self.model_dir, self.card.extra, self.device, build)
        # One model object is not safe to call from several threads at once on every device.
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, model_dir: Path, device: str, cuda: CudaOptions = CudaOptions()
    ) -> DetectronBackend:
        """The local model as the settings configure it: score threshold, engine, its threads and cache."""
        return cls(
            model_dir,
            device,
            settings.score_threshold,
            cuda,
            settings.engine,
            settings.torch_threads,
            settings.engine_cache_dir,
        )

    def info(self) -> dict[str, str]:
        return {"name": self.card.name, "version": self.card.version}

    def working_size(self) -> WorkingSize | None:
        """The model's own test-time resize (INPUT.MIN/MAX_SIZE_TEST): more pixels than that are never used."""
        short, long = int(self.cfg.INPUT.MIN_SIZE_TEST), int(self.cfg.INPUT.MAX_SIZE_TEST)
        return WorkingSize(short, long) if short > 0 else None  # 0 = the model does not resize

    def credentials_available(self) -> bool:
        return True  # a local model needs none

    def detect(self, image: DecodedImage) -> list[Detection]:
        return self.detect_array(image.rgb)

    def detect_batch(self, images: Sequence[DecodedImage]) -> list[list[Detection]]:
        """Several images in as few model calls as gives each exactly its answer alone (dynamic batching)."""
        return self.detect_arrays([image.rgb for image in images])

    def detect_array(self, rgb: np.ndarray) -> list[Detection]:
        return self.detect_arrays([rgb])[0]

    def detect_arrays(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        inputs = [self.model_input(rgb) for rgb in images]
        # Only inputs of one size share a model call: Detectron2 pads a batch to its largest image, and the
        # padding changes the features near an image's border, so a smaller image would not get its own answer.
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, item in enumerate(inputs):
            groups.setdefault(tuple(item["image"].shape), []).append(i)
        outputs: list[Any] = [None] * len(inputs)
        autocast = torch.autocast("cuda", dtype=torch.float16) if self.fp16 else contextlib.nullcontext()
        with self._lock, torch.inference_mode(), autocast:
            for indices in groups.values():
                results = self._run([inputs[i] for i in indices])
                for i, result in zip(indices, results, strict=True):
                    outputs[i] = result["instances"].to("cpu")
        return [self._with_view(rgb, self._detections(out)) for rgb, out in zip(images, outputs, strict=True)]

    def model_input(self, rgb: np.ndarray) -> dict[str, Any]:
        height, width = rgb.shape[:2]
        pixels = rgb if self.input_format == "RGB" else rgb[:, :, ::-1]
        resized = self.resize.get_transform(pixels).apply_image(pixels)
        tensor = torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1)))
        if self.pin_memory:
            # From page-locked memory the copy is a DMA that need not block this thread; Detectron2 then finds
            # the image already on the model's device.
            tensor = tensor.pin_memory().to(self.device, non_blocking=True)
        return {"image": tensor, "height": height, "width": width}

    def _detections(self, instances: Any) -> list[Detection]:
        boxes = instances.pred_boxes.tensor.float().numpy()
        scores = instances.scores.float().numpy()
        classes = instances.pred_classes.numpy()
        masks = instances.pred_masks.numpy() if instances.has("pred_masks") else None
        detections = []
        for i in range(len(instances)):
            class_id = int(classes[i])
            if not 0 <= class_id < len(self.classes):
                continue
            x0, y0, x1, y1 = (float(v) for v in boxes[i])
            detections.append(
                Detection(
                    label=self.classes[class_id],
                    box=(x0, y0, x1, y1),
                    score=float(scores[i]),
                    mask=None if masks is None else masks[i],
                )
            )
        return detections

    def main_car(self, detections: list[Detection], size: tuple[int, int]) -> Detection | None:
        """The car the pose will use, chosen as the pose module chooses it at this backend's score threshold."""
        return select_main_car(detections, size, PoseConfig(score_threshold=self.score_threshold))

    def _with_view(self, rgb: np.ndarray, detections: list[Detection]) -> list[Detection]:
        """Attach the view classifier's probabilities and roll to the car the pose will use (the only one it needs)."""
        if self.view_classifier is None:
            return detections
        height, width = rgb.shape[:2]
        main = self.main_car(detections, (width, height))
        cars = [i for i, d in enumerate(detections) if d.label == CAR_LABEL]
        if main is None or main.label != CAR_LABEL or not cars:
            return detections  # parts-only answers have no car box to classify
        # The pose module may have clipped the box: find the raw detection it came from.
        offsets = [np.abs(np.subtract(detections[i].box, main.box)).sum() for i in cars]
        index = cars[int(np.argmin(offsets))]
        with self._lock:
            read = self.view_classifier.read(rgb, main.box)  # with the camera roll when there is a roll head
        return [
            replace(d, view_probs=read.view_probs, roll_deg=read.roll_deg) if i == index else d
            for i, d in enumerate(detections)
        ]
