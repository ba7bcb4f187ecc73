"""What a model directory needs to be built: the carpose Detectron2 config keys and our backbones.

Importing this package registers the backbones in Detectron2's BACKBONE_REGISTRY. Training (`models/`) builds on
it; it imports nothing from there.
"""

from .config import add_carpose_config, carpose_cfg
from .mobilenet import build_mobilenet_v2_fpn_backbone

__all__ = ["add_carpose_config", "build_mobilenet_v2_fpn_backbone", "carpose_cfg"]
