"""Backbones registered in Detectron2's BACKBONE_REGISTRY. Importing this package registers them."""

from .mobilenet import build_mobilenet_v2_fpn_backbone

__all__ = ["build_mobilenet_v2_fpn_backbone"]
