"""Inference-only rewrites of a loaded network that keep its answers (to float rounding) and cut its CPU time.

- `fold_batch_norms`: a convolution followed by an eval-mode (or frozen) BatchNorm is one convolution with scaled
  weights and a bias. MobileNetV2 has 51-52 such pairs; each fold saves one full pass over a feature map.
- `channels_last`: PyTorch's CPU (oneDNN) convolutions run faster on NHWC tensors than on NCHW ones, the depthwise
  ones of MobileNetV2 about twice as fast (measured on the project's 2-core VM; docs/views.md, "Latency"). A
  convolution with NHWC weights gives NHWC outputs, so converting the weights once carries the layout through the
  network; the other layers (RoIAlign, linear heads) take either layout.

Both change the weights in place, so a model rewritten here must never be saved or trained again.
"""

from __future__ import annotations

import torch
from detectron2.layers import FrozenBatchNorm2d
from torch import nn

BATCH_NORMS = (nn.BatchNorm2d, FrozenBatchNorm2d)


def _tensor(module: nn.Module, name: str) -> torch.Tensor:
    value = getattr(module, name)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{type(module).__name__}.{name} is not a tensor")
    return value.detach()


def _fold_pair(conv: nn.Conv2d, norm: nn.BatchNorm2d | FrozenBatchNorm2d) -> None:
    mean, var = _tensor(norm, "running_mean"), _tensor(norm, "running_var")
    weight, bias = _tensor(norm, "weight"), _tensor(norm, "bias")
    scale = weight * torch.rsqrt(var + float(norm.eps))
    folded_bias = bias - mean * scale
    if conv.bias is not None:
        folded_bias = folded_bias + conv.bias.detach() * scale
    with torch.no_grad():
        conv.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
    conv.bias = nn.Parameter(folded_bias.detach().clone(), requires_grad=False)


def fold_batch_norms(module: nn.Module) -> int:
    """Fold every (Conv2d, BatchNorm) pair that sits next to each other in an nn.Sequential; returns how many.

    The norm is replaced by nn.Identity so the Sequential keeps its indices (and its state-dict keys). Norms in
    training mode are left alone: their statistics are not yet final.
    """
    folded = 0
    for child in module.children():
        folded += fold_batch_norms(child)
    if isinstance(module, nn.Sequential):
        for index in range(len(module) - 1):
            conv, norm = module[index], module[index + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, BATCH_NORMS) and not norm.training:
                _fold_pair(conv, norm)
                module[index + 1] = nn.Identity()
                folded += 1
    return folded


def prepare_for_inference(module: nn.Module) -> nn.Module:
    """Eval mode, batch norms folded, weights in channels_last. Inputs may come in either layout: a convolution
    with NHWC weights answers in NHWC, so the layout spreads from the first one."""
    module.eval()
    fold_batch_norms(module)
    return module.to(memory_format=torch.channels_last)
