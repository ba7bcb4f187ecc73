"""Training-time data mapper: Detectron2's DatasetMapper plus a left/right-aware horizontal flip.

A plain horizontal flip turns a car's left door into something that looks like a right door while the
label still says left. Flipping is still the cheapest way to double 400 images, so the class ids of
left/right parts are swapped whenever the image was mirrored.
"""

from __future__ import annotations

import copy
from typing import Any

from detectron2.config import CfgNode
from detectron2.data import DatasetMapper, MetadataCatalog
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T

from .data import mirror_class_map


class MirrorAwareDatasetMapper(DatasetMapper):
    def __init__(self, cfg: CfgNode, is_train: bool = True) -> None:
        augmentations: list[T.Augmentation] = utils.build_augmentation(cfg, is_train)
        jitter = float(cfg.CARPOSE.COLOR_JITTER)
        if is_train and jitter > 0:
            augmentations += [
                T.RandomBrightness(1 - jitter, 1 + jitter),
                T.RandomContrast(1 - jitter, 1 + jitter),
                T.RandomSaturation(1 - jitter, 1 + jitter),
            ]
        super().__init__(cfg, is_train=is_train, augmentations=augmentations)
        names = tuple(MetadataCatalog.get(cfg.DATASETS.TRAIN[0]).thing_classes)
        self.mirror_map = mirror_class_map(names)

    def _transform_annotations(
        self, dataset_dict: dict[str, Any], transforms: T.TransformList, image_shape: Any
    ) -> None:
        flips = sum(isinstance(t, T.HFlipTransform) for t in transforms.transforms)
        if flips % 2 == 1:
            annotations = copy.deepcopy(dataset_dict["annotations"])
            for ann in annotations:
                ann["category_id"] = self.mirror_map[ann["category_id"]]
            dataset_dict["annotations"] = annotations
        super()._transform_annotations(dataset_dict, transforms, image_shape)
