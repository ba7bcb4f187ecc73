"""Register the Car Parts COCO dataset with Detectron2, one instance per physical part.

The dataset is read in place from a configurable directory (default ../shared/datasets/car-parts); nothing
is copied. The conversion itself (wheels split per polygon, `_background_` dropped, optional whole-car
instance) is the same one the ground-truth view tests use: `models.groundtruth`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

from service.postprocess.vocabulary import MODEL_CLASSES, PART_LABELS, mirror_label

from .groundtruth import car_instance, split_coco_instances

SPLITS = {"train": "trainingset", "test": "testset"}


def class_names(with_car_class: bool) -> tuple[str, ...]:
    return MODEL_CLASSES if with_car_class else PART_LABELS


def mirror_class_map(names: tuple[str, ...]) -> list[int]:
    """Class index -> index of the same part on the mirrored car."""
    return [names.index(mirror_label(name)) for name in names]


def load_split(split_dir: Path, with_car_class: bool) -> list[dict[str, Any]]:
    coco = json.loads((split_dir / "annotations.json").read_text())
    instances = split_coco_instances(coco)
    names = class_names(with_car_class)
    records = []
    for image in coco["images"]:
        parts = instances.get(int(image["id"]), [])
        car = car_instance(parts) if with_car_class else None
        annotations = [
            {
                "bbox": list(inst.box),
                "bbox_mode": BoxMode.XYXY_ABS,
                "segmentation": [list(p) for p in inst.polygons],
                "category_id": names.index(inst.label),
                "iscrowd": 0,
            }
            for inst in [*parts, *([car] if car else [])]
        ]
        records.append(
            {
                "file_name": str(split_dir / "JPEGImages" / image["file_name"]),
                "image_id": int(image["id"]),
                "height": int(image["height"]),
                "width": int(image["width"]),
                "annotations": annotations,
            }
        )
    return records


def register_car_parts(dataset_dir: str | Path, with_car_class: bool = True, prefix: str = "carparts") -> list[str]:
    """Register `<prefix>_train` and `<prefix>_test`; returns the names. Idempotent."""
    root = Path(dataset_dir).resolve()
    if not (root / SPLITS["train"] / "annotations.json").is_file():
        raise FileNotFoundError(f"Car Parts dataset not found under {root}: see the README (Data) for where to get it")
    names = []
    for split, folder in SPLITS.items():
        name = f"{prefix}_{split}"
        names.append(name)
        if name in DatasetCatalog.list():
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
        split_dir = root / folder
        DatasetCatalog.register(name, lambda d=split_dir: load_split(d, with_car_class))
        MetadataCatalog.get(name).set(
            thing_classes=list(class_names(with_car_class)), evaluator_type="coco", dataset_dir=str(split_dir)
        )
    return names
