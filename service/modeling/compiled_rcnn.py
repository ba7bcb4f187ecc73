"""Detectron2's GeneralizedRCNN inference with its convolutional stages run by an engine's compiled networks.

The steps are Detectron2's own (`GeneralizedRCNN.inference`, `RPN.forward` at test time), in the same order and
with the same modules, except that three stages come from `Network`s built by the engine:

- the dense stage: trunk + FPN + the RPN head's convolutions over every pyramid level, one network;
- the box head (the two fully connected layers over pooled RoI features);
- the mask head's layers (four 3x3 convolutions, the upsampling and the predictor over pooled RoI features).

The image normalisation and padding, anchors, proposal decoding, NMS, RoIAlign, the box predictor and the
mask paste stay in PyTorch. RoIAlign, the largest of them, runs its boxes in chunks on a thread pool
(`ChunkedRoIAlign`): torchvision's CPU kernel uses one core, and each box is pooled on its own, so the answer is
the same.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
from detectron2.modeling import GeneralizedRCNN
from detectron2.modeling.poolers import ROIPooler
from detectron2.modeling.roi_heads.mask_head import mask_rcnn_inference
from detectron2.structures import Instances
from torch import nn

from .networks import Network, NetworkBuilder

# The example input the dense stage is converted with; its height and width stay free (any multiple of the
# backbone's size divisibility works).
EXAMPLE_IMAGE_SIZE = (512, 704)


class DenseStage(nn.Module):
    """Normalised, padded images -> the feature maps named in `feature_names`, then the RPN's objectness logits
    and anchor deltas per level: one network, so an engine compiles and runs it in one call."""

    def __init__(self, model: GeneralizedRCNN) -> None:
        super().__init__()
        self.backbone = model.backbone
        self.rpn_head = model.proposal_generator.rpn_head
        self.rpn_features: list[str] = list(model.proposal_generator.in_features)
        self.feature_names: list[str] = list(model.backbone.output_shape())

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.backbone(images)
        logits, deltas = self.rpn_head([features[name] for name in self.rpn_features])
        return (*(features[name] for name in self.feature_names), *logits, *deltas)


class NetworkModule(nn.Module):
    """A compiled single-output network where Detectron2 expects a module (the box head)."""

    def __init__(self, network: Network) -> None:
        super().__init__()
        self.network = network

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.network(inputs)[0]


class CompiledMaskHead(nn.Module):
    """`BaseMaskRCNNHead.forward` at test time, with `layers` run by a compiled network."""

    def __init__(self, network: Network) -> None:
        super().__init__()
        self.network = network

    def forward(self, features: torch.Tensor, instances: list[Instances]) -> list[Instances]:
        mask_rcnn_inference(self.network(features)[0], instances)
        return instances


class MaskLayers(nn.Module):
    """The mask head's `layers` as a module of its own (what gets compiled)."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head.layers(features)  # type: ignore[operator]  # Detectron2 is untyped


class ChunkedRoIAlign(nn.Module):
    """One pyramid level's RoIAlign (`detectron2.layers.ROIAlign`) over chunks of its boxes side by side."""

    MIN_CHUNK = 16  # boxes: below this a chunk costs more in thread hand-offs than it saves

    def __init__(self, inner: nn.Module, pool: ThreadPoolExecutor, chunks: int) -> None:
        super().__init__()
        self.inner = inner
        self.pool = pool
        self.chunks = chunks

    def forward(self, features: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        chunks = min(self.chunks, boxes.shape[0] // self.MIN_CHUNK)
        if chunks < 2:
            return self.inner(features, boxes)
        parts = self.pool.map(lambda part: self.inner(features, part), boxes.chunk(chunks))
        return torch.cat(list(parts))


def _chunk_poolers(pooler: ROIPooler, pool: ThreadPoolExecutor, chunks: int) -> None:
    levels = pooler.level_poolers  # one RoIAlign per pyramid level
    if not isinstance(levels, nn.ModuleList):
        raise TypeError(f"expected a ModuleList of RoIAligns, got {type(levels).__name__}")
    for index, level in enumerate(levels):
        levels[index] = ChunkedRoIAlign(level, pool, chunks)


def _pooled_example(pooler: nn.Module, channels: int) -> torch.Tensor:
    size = int(pooler.output_size[0])  # type: ignore[index]  # ROIPooler.output_size is a (h, w) tuple
    return torch.zeros(2, channels, size, size)


class CompiledRCNN:
    """Calls like the model (`rcnn(batched_inputs)` -> [{"instances": ...}]) with its networks compiled.

    Rewrites `model.roi_heads.box_head` and `model.roi_heads.mask_head` in place: the model object belongs to
    this wrapper from here on (it is already a serving-only object, see `inference.prepare_for_inference`).
    """

    def __init__(self, model: GeneralizedRCNN, build: NetworkBuilder, threads: int = 0) -> None:
        self.model = model
        self.rpn = model.proposal_generator
        dense = DenseStage(model)
        self.feature_names = dense.feature_names
        self.levels = len(dense.rpn_features)
        divisor = max(model.backbone.size_divisibility, 1)
        height, width = (-(-side // divisor) * divisor for side in EXAMPLE_IMAGE_SIZE)
        self.dense = build(dense, torch.zeros(1, 3, height, width), (None, 3, None, None))
        heads = model.roi_heads
        box_channels = model.backbone.output_shape()[heads.box_in_features[0]].channels
        box_example = _pooled_example(heads.box_pooler, box_channels)
        heads.box_head = NetworkModule(build(heads.box_head, box_example, (None, *box_example.shape[1:])))
        if heads.mask_on:
            mask_example = _pooled_example(heads.mask_pooler, box_channels)
            # Its working memory grows with the detections (~9 MB for a dozen): freed between calls.
            mask_layers = build(
                MaskLayers(heads.mask_head), mask_example, (None, *mask_example.shape[1:]), keep_memory=False
            )
            heads.mask_head = CompiledMaskHead(mask_layers)
        # `threads` as the engine's (0 = one per core): the pool's threads never run beside the networks.
        workers = threads or os.cpu_count() or 1
        if workers > 1:
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="roi-align")
            _chunk_poolers(heads.box_pooler, self._pool, workers)
            if heads.mask_on:
                _chunk_poolers(heads.mask_pooler, self._pool, workers)

    def __call__(self, batched_inputs: list[dict[str, Any]]) -> list[dict[str, Instances]]:
        model, rpn = self.model, self.rpn
        images = model.preprocess_image(batched_inputs)
        outputs = self.dense(images.tensor)
        count = len(self.feature_names)
        features = dict(zip(self.feature_names, outputs[:count], strict=True))
        logits = outputs[count : count + self.levels]
        deltas = outputs[count + self.levels :]
        level_features = [features[name] for name in rpn.in_features]
        anchors = rpn.anchor_generator(level_features)
        # RPN.forward's reshapes: (N, A, H, W) -> (N, H*W*A) and (N, A*B, H, W) -> (N, H*W*A, B).
        box_dim = rpn.anchor_generator.box_dim
        objectness = [score.permute(0, 2, 3, 1).flatten(1) for score in logits]
        anchor_deltas = [
            delta.view(delta.shape[0], -1, box_dim, delta.shape[-2], delta.shape[-1])
            .permute(0, 3, 4, 1, 2)
            .flatten(1, -2)
            for delta in deltas
        ]
        proposals = rpn.predict_proposals(anchors, objectness, anchor_deltas, images.image_sizes)
        results, _ = model.roi_heads(images, features, proposals, None)
        return GeneralizedRCNN._postprocess(results, batched_inputs, images.image_sizes)
