"""A tiny, randomly initialised carpose model directory: real Detectron2 inference in seconds.

Built by the tests themselves (nothing downloaded): the CPU recipe's architecture with narrow FPN and heads.
Its detections are meaningless, so tests that check views use the embedded default model instead.
"""

from __future__ import annotations

from pathlib import Path

import torch

from models.config import RECIPES, load_cfg
from models.export import export_model_dir
from service.postprocess.vocabulary import MODEL_CLASSES

TINY_OPTS = [
    "MODEL.MOBILENET.IMAGENET_INIT",
    "False",
    "MODEL.FPN.OUT_CHANNELS",
    "32",
    "MODEL.ROI_BOX_HEAD.FC_DIM",
    "64",
    "MODEL.ROI_MASK_HEAD.CONV_DIM",
    "32",
    "MODEL.ROI_MASK_HEAD.NUM_CONV",
    "1",
    "INPUT.MIN_SIZE_TEST",
    "256",
    "INPUT.MAX_SIZE_TEST",
    "427",
    "CARPOSE.MODEL_NAME",
    "tiny_test_model",
]


def build_tiny_model_dir(out_dir: Path, seed: int = 0) -> Path:
    from detectron2.modeling import build_model

    cfg = load_cfg(RECIPES["cpu_mnv2_fpn"], TINY_OPTS)
    torch.manual_seed(seed)
    model = build_model(cfg)
    return export_model_dir(
        cfg, model.state_dict(), out_dir, MODEL_CLASSES, card={"training": "none: random weights for tests"}
    )
