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


def test_clip_polygon_keeps_the_part_inside_the_rectangle() -> None:
    from models.tight_crop import clip_polygon

    square = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
    clipped = clip_polygon(square, 5.0, -1.0, 20.0, 20.0)
    xs, ys = clipped[:, 0], clipped[:, 1]
    area = 0.5 * abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1)))
    assert area == pytest.approx(50.0)
    assert xs.min() == pytest.approx(5.0) and xs.max() == pytest.approx(10.0)
    assert len(clip_polygon(square, 11.0, 0.0, 20.0, 20.0)) < 3  # wholly outside: nothing left


def test_tight_crop_cuts_the_photo_to_its_car_and_its_parts_to_the_crop(car_parts_dir: Path) -> None:
    from detectron2.data import transforms as T

    from models.config import RECIPES, load_cfg
    from models.data import register_car_parts
    from models.mapper import MirrorAwareDatasetMapper
    from models.tight_crop import TightCarCrop

    register_car_parts(car_parts_dir)
    cfg = load_cfg(RECIPES["cpu_mnv2_fpn"], ["CARPOSE.COLOR_JITTER", "0.0"])
    record = load_split(car_parts_dir / "trainingset", with_car_class=True)[0]
    car = next(a for a in record["annotations"] if MODEL_CLASSES[a["category_id"]] == CAR_LABEL)
    x0, y0, x1, y1 = car["bbox"]
    mapper = MirrorAwareDatasetMapper(cfg, is_train=True)

    # Shares of 0: the photo becomes its car box.
    mapper.augmentations = T.AugmentationList([TightCarCrop(1.0, 0.0, 0.0)])
    whole = mapper(dict(record))
    assert tuple(whole["image"].shape[1:]) == (round(y1) - round(y0), round(x1) - round(x0))

    # Shares of -0.3: the crop cuts into the car; the parts are clipped to it and those wholly outside are gone.
    mapper.augmentations = T.AugmentationList([TightCarCrop(1.0, -0.3, -0.3)])
    cut = mapper(dict(record))
    height, width = cut["image"].shape[1:]
    boxes = cut["instances"].gt_boxes.tensor.numpy()
    assert len(boxes) < len(whole["instances"])
    assert boxes[:, [0, 1]].min() >= 0.0 and boxes[:, 2].max() <= width and boxes[:, 3].max() <= height
    # Each box is its clipped mask's extent, so a cut part ends at the border.
    np.testing.assert_allclose(boxes, cut["instances"].gt_masks.get_bounding_boxes().tensor.numpy())
    assert np.isclose(boxes[:, [0, 2]], [0.0, width]).any() or np.isclose(boxes[:, [1, 3]], [0.0, height]).any()


def test_mapper_without_tight_crop_never_crops(car_parts_dir: Path) -> None:
    from models.config import RECIPES, load_cfg
    from models.data import register_car_parts
    from models.mapper import MirrorAwareDatasetMapper
    from models.tight_crop import TightCarCrop

    register_car_parts(car_parts_dir)
    cfg = load_cfg(RECIPES["cpu_mnv2_fpn"])
    assert not any(isinstance(a, TightCarCrop) for a in MirrorAwareDatasetMapper(cfg).augmentations.augs)
    tight = load_cfg(RECIPES["cpu_mnv2_fpn"], ["CARPOSE.TIGHT_CROP", "0.5"])
    assert isinstance(MirrorAwareDatasetMapper(tight).augmentations.augs[0], TightCarCrop)
