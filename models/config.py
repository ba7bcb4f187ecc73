"""Training configs: the runtime's carpose Detectron2 config (`service.modeling`) merged with a shipped recipe."""

from __future__ import annotations

from pathlib import Path

from detectron2.config import CfgNode

from service.modeling import carpose_cfg

from .data import class_names
from .paths import DEFAULT_DATASET_DIR

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
RECIPES = {
    "cpu_mnv2_fpn": RECIPES_DIR / "cpu_mnv2_fpn.yaml",
    "cpu_mnv2_fpn_web": RECIPES_DIR / "cpu_mnv2_fpn_web.yaml",  # fine-tune of a cpu_mnv2_fpn model (--weights)
    "gpu_r50_fpn": RECIPES_DIR / "gpu_r50_fpn.yaml",
}


def load_cfg(path: str | Path, opts: list[str] | None = None) -> CfgNode:
    """Defaults, then the recipe's model-zoo base, the recipe and `opts`; the class count follows the class list."""
    cfg = carpose_cfg()
    cfg.CARPOSE.DATASET_DIR = str(DEFAULT_DATASET_DIR)
    recipe = CfgNode.load_yaml_with_base(str(path), allow_unsafe=False)
    base_zoo = recipe.get("CARPOSE", {}).get("BASE_ZOO_CONFIG", "")
    if base_zoo:
        from detectron2 import model_zoo

        cfg.merge_from_file(model_zoo.get_config_file(base_zoo))
    cfg.merge_from_file(str(path))
    if opts:
        cfg.merge_from_list(opts)
    # Derived, never written by hand: 18 parts, plus the whole car with CARPOSE.WITH_CAR_CLASS.
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = len(class_names(cfg.CARPOSE.WITH_CAR_CLASS))
    return cfg
