"""Detectron2 backend: loads a model directory once, then turns images into part detections.

A model directory holds `config.yaml` (a full Detectron2 config), the weights named by `model.json`
(`weights`, fp16 storage is fine: tensors are cast to the model's dtype on load) and `model.json`
(class names, training data, recipe, metrics). `models/` writes these directories.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import transforms as T
from detectron2.modeling import build_model

from ..imaging import DecodedImage
from ..modeling import carpose_cfg
from ..postprocess import CAR_LABEL, Detection, PoseConfig
from ..postprocess.cars import select_main_car
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


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("POSE_DEVICE=cuda but no CUDA device is available")
    return requested


class DetectronBackend:
    name = "detectron2"

    def __init__(self, model_dir: Path, device: str = "auto", score_threshold: float = 0.5) -> None:
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
        self.model = build_model(cfg)
        self.model.eval()
        DetectionCheckpointer(self.model).load(cfg.MODEL.WEIGHTS)
        self.input_format = cfg.INPUT.FORMAT
        self.resize = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
        self.classes = self.card.classes
        self.score_threshold = score_threshold
        # The learned view of the main car, when the model directory has one (see view_classifier.py).
        self.view_classifier = ViewClassifier.from_card(self.model_dir, self.card.extra, self.device)
        # One model object is not safe to call from several threads at once on every device.
        self._lock = threading.Lock()

    def info(self) -> dict[str, str]:
        return {"name": self.card.name, "version": self.card.version}

    def detect(self, image: DecodedImage) -> list[Detection]:
        return self.detect_array(image.rgb)

    def detect_array(self, rgb: np.ndarray) -> list[Detection]:
        height, width = rgb.shape[:2]
        pixels = rgb if self.input_format == "RGB" else rgb[:, :, ::-1]
        resized = self.resize.get_transform(pixels).apply_image(pixels)
        tensor = torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1)))
        with self._lock, torch.inference_mode():
            instances = self.model([{"image": tensor, "height": height, "width": width}])[0]["instances"].to("cpu")
        boxes = instances.pred_boxes.tensor.numpy()
        scores = instances.scores.numpy()
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
        return self._with_view(rgb, detections)

    def _with_view(self, rgb: np.ndarray, detections: list[Detection]) -> list[Detection]:
        """Attach the view classifier's probabilities to the car the pose will use (the only one it needs)."""
        if self.view_classifier is None:
            return detections
        height, width = rgb.shape[:2]
        main = select_main_car(detections, (width, height), PoseConfig(score_threshold=self.score_threshold))
        cars = [i for i, d in enumerate(detections) if d.label == CAR_LABEL]
        if main is None or main.label != CAR_LABEL or not cars:
            return detections  # parts-only answers have no car box to classify
        # The pose module may have clipped the box: find the raw detection it came from.
        offsets = [np.abs(np.subtract(detections[i].box, main.box)).sum() for i in cars]
        index = cars[int(np.argmin(offsets))]
        with self._lock:
            probs = self.view_classifier.probabilities(rgb, main.box)
        return [replace(d, view_probs=probs) if i == index else d for i, d in enumerate(detections)]
