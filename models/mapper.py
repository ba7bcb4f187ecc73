"""Training-time data mapper: Detectron2's DatasetMapper plus a left/right-aware horizontal flip and web framing.

A plain horizontal flip turns a car's left door into something that looks like a right door while the
label still says left. Flipping is still the cheapest way to double 400 images, so the class ids of
left/right parts are swapped whenever the image was mirrored. With `CARPOSE.TIGHT_CROP` a share of the photos is
first cropped close around the car (`tight_crop.py`): the car box travels with the image so the crop can find it.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from detectron2.config import CfgNode
from detectron2.data import DatasetMapper, MetadataCatalog
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T

from service.postprocess.vocabulary import CAR_LABEL

from .data import mirror_class_map
from .tight_crop import CarCropTransform, TightCarCrop


class MirrorAwareDatasetMapper(DatasetMapper):
    def __init__(self, cfg: CfgNode, is_train: bool = True) -> None:
        augmentations: list[T.Augmentation] = utils.build_augmentation(cfg, is_train)
        tight = float(cfg.CARPOSE.TIGHT_CROP)
        if is_train and tight > 0:
            low, high = (float(v) for v in cfg.CARPOSE.TIGHT_CROP_SHARES)
            augmentations.insert(0, TightCarCrop(tight, low, high))  # before the resize: crop, then scale
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
        self.car_class = names.index(CAR_LABEL) if CAR_LABEL in names else None

    def __call__(self, dataset_dict: dict[str, Any]) -> dict[str, Any]:
        if not self.is_train:
            return super().__call__(dataset_dict)
        # DatasetMapper's own steps for a photo with instance annotations (the Car Parts records have no semantic
        # segmentation or precomputed proposals), with the car box in the augmentation input (TightCarCrop reads it;
        # the other augmentations transform it along).
        dataset_dict = copy.deepcopy(dataset_dict)
        image = utils.read_image(dataset_dict["file_name"], format=self.image_format)
        utils.check_image_size(dataset_dict, image)
        aug_input = T.AugInput(image, boxes=self._car_boxes(dataset_dict))
        transforms = self.augmentations(aug_input)
        image = aug_input.image
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if "annotations" in dataset_dict:
            self._transform_annotations(dataset_dict, transforms, image.shape[:2])
        return dataset_dict

    def _car_boxes(self, dataset_dict: dict[str, Any]) -> np.ndarray:
        """The photo's car boxes (XYXY pixels; the dataset's boxes are XYXY_ABS, models/data.py)."""
        boxes = [a["bbox"] for a in dataset_dict.get("annotations", []) if a["category_id"] == self.car_class]
        return np.array(boxes, dtype=np.float64).reshape(-1, 4)

    def _transform_annotations(
        self, dataset_dict: dict[str, Any], transforms: T.TransformList, image_shape: Any
    ) -> None:
        flips = sum(isinstance(t, T.HFlipTransform) for t in transforms.transforms)
        crop = next((t for t in transforms.transforms if isinstance(t, CarCropTransform)), None)
        if flips % 2 == 1 or crop is not None:
            annotations = copy.deepcopy(dataset_dict["annotations"])
            if crop is not None:  # parts wholly outside the crop are not in the photo any more
                annotations = [a for a in annotations if crop.keeps(a["segmentation"])]
            if flips % 2 == 1:
                for ann in annotations:
                    ann["category_id"] = self.mirror_map[ann["category_id"]]
            dataset_dict["annotations"] = annotations
        super()._transform_annotations(dataset_dict, transforms, image_shape)
        if crop is not None:
            # A cut part's box is its clipped polygon's extent, not its transformed (and only clamped) box.
            instances = dataset_dict["instances"]
            instances.gt_boxes = instances.gt_masks.get_bounding_boxes()
            dataset_dict["instances"] = utils.filter_empty_instances(instances)
