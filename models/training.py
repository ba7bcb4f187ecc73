"""Train a car-parts Mask R-CNN with Detectron2's DefaultTrainer.

Progress (iteration, losses, learning rate, ETA) is printed by Detectron2's CommonMetricPrinter every
`log_period` iterations and written to `<OUTPUT_DIR>/metrics.json`, which the report turns into a loss
curve. Checkpoints land every SOLVER.CHECKPOINT_PERIOD iterations; `resume=True` continues from the last.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from detectron2.config import CfgNode
from detectron2.data import build_detection_train_loader
from detectron2.engine import DefaultTrainer, hooks
from detectron2.evaluation import COCOEvaluator
from detectron2.utils.logger import setup_logger

from .data import register_car_parts
from .mapper import MirrorAwareDatasetMapper


class CarPartsTrainer(DefaultTrainer):
    @classmethod
    def build_train_loader(cls, cfg: CfgNode) -> Any:
        return build_detection_train_loader(cfg, mapper=MirrorAwareDatasetMapper(cfg, is_train=True))

    @classmethod
    def build_evaluator(cls, cfg: CfgNode, dataset_name: str, output_folder: str | None = None) -> COCOEvaluator:
        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference")
        return COCOEvaluator(dataset_name, tasks=("bbox", "segm"), distributed=False, output_dir=output_folder)

    def build_hooks(self) -> list[hooks.HookBase]:
        built: list[hooks.HookBase] = super().build_hooks()
        # The final evaluation is run by `carpose eval` on the exported model; skip the trainer's own.
        return [h for h in built if not isinstance(h, hooks.EvalHook) or self.cfg.TEST.EVAL_PERIOD > 0]


def train(cfg: CfgNode, resume: bool = True, threads: int = 0) -> Path:
    """Run training; returns the path of the final checkpoint."""
    if threads > 0:
        torch.set_num_threads(threads)
    Path(cfg.OUTPUT_DIR).mkdir(parents=True, exist_ok=True)
    setup_logger(output=cfg.OUTPUT_DIR, name="detectron2")
    setup_logger(output=cfg.OUTPUT_DIR, name="models")
    register_car_parts(cfg.CARPOSE.DATASET_DIR, with_car_class=cfg.CARPOSE.WITH_CAR_CLASS)
    with open(os.path.join(cfg.OUTPUT_DIR, "config.yaml"), "w") as f:
        f.write(cfg.dump())
    trainer = CarPartsTrainer(cfg)
    trainer.resume_or_load(resume=resume)
    logging.getLogger("models").info("training %s for %d iterations", cfg.CARPOSE.MODEL_NAME, cfg.SOLVER.MAX_ITER)
    trainer.train()
    return Path(cfg.OUTPUT_DIR) / "model_final.pth"
