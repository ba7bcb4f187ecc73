"""The Detectron2 backend serves its networks folded and in NHWC (service/modeling/inference.py) and answers as the
trained networks do; RoIAlign gets the pyramid in NCHW. Real Detectron2 on the tiny test model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model

from service.backends.detectron import DetectronBackend
from service.modeling.inference import BATCH_NORMS


def test_the_backend_serves_the_folded_nhwc_form_with_the_trained_features(tiny_model_dir: Path) -> None:
    # The torch engine's form: a compiled engine runs its own copy of the backbone and frees PyTorch's.
    backend = DetectronBackend(tiny_model_dir, device="cpu", engine="torch")
    assert not any(isinstance(module, BATCH_NORMS) for module in backend.model.modules())
    trained = build_model(backend.cfg).eval()
    DetectionCheckpointer(trained).load(backend.cfg.MODEL.WEIGHTS)
    assert any(isinstance(module, BATCH_NORMS) for module in trained.modules())

    image = torch.randn(1, 3, 256, 320, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        expected, served = trained.backbone(image), backend.model.backbone(image)
    for name, tensor in expected.items():
        assert served[name].is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(served[name], tensor, rtol=1e-4, atol=1e-4 * float(tensor.abs().max()))


def test_roi_heads_get_the_pyramid_in_nchw(tiny_model_dir: Path) -> None:
    backend = DetectronBackend(tiny_model_dir, device="cpu")
    layouts: list[bool] = []

    def record(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        layouts.extend(tensor.is_contiguous() for tensor in args[1].values())

    backend.model.roi_heads.register_forward_pre_hook(record)  # runs after the backend's own hook
    backend.detect_array(torch.randint(0, 255, (240, 320, 3), dtype=torch.uint8).numpy())
    assert layouts and all(layouts)
