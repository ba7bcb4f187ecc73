"""Dataset conversion and the mirror-aware mapper."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.data import class_names, load_split, mirror_class_map
from service.postprocess.vocabulary import CAR_LABEL, MIRROR_PAIRS, MODEL_CLASSES, PART_LABELS, WHEEL_LABEL


def test_mirror_map_swaps_left_and_right_and_is_an_involution() -> None:
    mapping = mirror_class_map(MODEL_CLASSES)
    for left, right in MIRROR_PAIRS:
        assert mapping[MODEL_CLASSES.index(left)] == MODEL_CLASSES.index(right)
    assert [mapping[m] for m in mapping] == list(range(len(MODEL_CLASSES)))
    assert mapping[MODEL_CLASSES.index(WHEEL_LABEL)] == MODEL_CLASSES.index(WHEEL_LABEL)


def test_split_has_one_instance_per_wheel_and_a_car(car_parts_dir: Path) -> None:
    split_dir = car_parts_dir / "testset"
    coco = json.loads((split_dir / "annotations.json").read_text())
    wheel_id = next(c["id"] for c in coco["categories"] if c["name"] == WHEEL_LABEL)
    polygons_per_image: dict[int, int] = {}
    for ann in coco["annotations"]:
        if ann["category_id"] == wheel_id:
            polygons_per_image[ann["image_id"]] = polygons_per_image.get(ann["image_id"], 0) + len(ann["segmentation"])
    records = {r["image_id"]: r for r in load_split(split_dir, with_car_class=True)}
    assert len(records) == len(coco["images"])
    wheel_class = MODEL_CLASSES.index(WHEEL_LABEL)
    car_class = MODEL_CLASSES.index(CAR_LABEL)
    for image_id, n_polygons in polygons_per_image.items():
        wheels = [a for a in records[image_id]["annotations"] if a["category_id"] == wheel_class]
        assert len(wheels) == n_polygons
        for wheel in wheels:
            assert len(wheel["segmentation"]) == 1
    for record in records.values():
        if record["annotations"]:
            cars = [a for a in record["annotations"] if a["category_id"] == car_class]
            assert len(cars) == 1
            # The car box encloses every part.
            x0, _, x1, _ = cars[0]["bbox"]
            for ann in record["annotations"]:
                assert ann["bbox"][0] >= x0 - 1e-6 and ann["bbox"][2] <= x1 + 1e-6
    parts_only = load_split(split_dir, with_car_class=False)
    assert all(a["category_id"] < len(PART_LABELS) for r in parts_only for a in r["annotations"])
    assert class_names(False) == PART_LABELS


def test_mapper_flip_swaps_side_classes_and_mirrors_boxes(car_parts_dir: Path) -> None:
    from detectron2.data import transforms as T

    from models.config import RECIPES, load_cfg
    from models.data import register_car_parts
    from models.mapper import MirrorAwareDatasetMapper

    register_car_parts(car_parts_dir)
    cfg = load_cfg(RECIPES["cpu_mnv2_fpn"], ["CARPOSE.COLOR_JITTER", "0.0"])
    records = load_split(car_parts_dir / "trainingset", with_car_class=True)
    record = next(
        r for r in records if any(MODEL_CLASSES[a["category_id"]] == "front_left_light" for a in r["annotations"])
    )
    width = record["width"]

    flip = MirrorAwareDatasetMapper(cfg, is_train=True)
    flip.augmentations = T.AugmentationList([T.RandomFlip(prob=1.0, horizontal=True)])
    keep = MirrorAwareDatasetMapper(cfg, is_train=True)
    keep.augmentations = T.AugmentationList([])
    flipped = flip(dict(record))["instances"]
    plain = keep(dict(record))["instances"]
    mapping = mirror_class_map(MODEL_CLASSES)
    assert flipped.gt_classes.tolist() == [mapping[c] for c in plain.gt_classes.tolist()]
    mirrored = plain.gt_boxes.tensor.numpy().copy()
    mirrored[:, [0, 2]] = width - mirrored[:, [2, 0]]
    np.testing.assert_allclose(flipped.gt_boxes.tensor.numpy(), mirrored, atol=1e-3)


def test_register_fails_clearly_without_dataset(tmp_path: Path) -> None:
    from models.data import register_car_parts

    with pytest.raises(FileNotFoundError, match="Car Parts dataset not found"):
        register_car_parts(tmp_path)
