"""`carpose train-views --tune-from K` end to end, briefly, on real labelled photos: the served crops of a copy of the
embedded model, the tuned copy of the trunk's last blocks written beside the frozen trunk, loaded by the service's
backend; the roll head still reads the frozen features, so fine-tuning the view does not move the roll."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from models.paths import DEFAULT_VIEWS_FILE
from models.view_finetune import TuneRecipe, finetune_view_classifier
from service.backends.detectron import DetectronBackend
from service.backends.view_classifier import ViewClassifier
from service.modeling.mobilenet import imagenet_features_state, imagenet_weights_path

PHOTOS = 10
TUNED_FROM = 16


@pytest.fixture(scope="module")
def tuned_model_dir(default_model_dir: Path, car_parts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not DEFAULT_VIEWS_FILE.is_file():
        pytest.skip(f"view labels not found at {DEFAULT_VIEWS_FILE}")
    model_dir = tmp_path_factory.mktemp("tuned_views") / "model"
    shutil.copytree(default_model_dir, model_dir)
    recipe = TuneRecipe(tuned_from=TUNED_FROM, epochs=1, batch_size=4, folds=2)
    images = car_parts_dir / "trainingset" / "JPEGImages"
    finetune_view_classifier(model_dir, DEFAULT_VIEWS_FILE, images, recipe=recipe, limit=PHOTOS)
    return model_dir


def test_fine_tuning_writes_the_tuned_blocks_beside_the_frozen_trunk(tuned_model_dir: Path) -> None:
    entry = json.loads((tuned_model_dir / "model.json").read_text())["view_classifier"]
    assert entry["tuned_from"] == TUNED_FROM
    held_out = entry["held_out"]
    assert 0 < held_out["photos"] < PHOTOS and len(entry["training_photos"]) == PHOTOS
    assert np.array(held_out["confusion"]["counts"]).sum() == held_out["photos"] and entry["temperature"] > 0
    state = torch.load(tuned_model_dir / entry["weights"], weights_only=True)
    path = imagenet_weights_path()
    assert path is not None
    imagenet = imagenet_features_state(path)
    # The frozen trunk is ImageNet's (as stored, in half precision); the tuned copy of its last blocks moved.
    conv = f"{TUNED_FROM}.conv.0.0.weight"
    assert torch.equal(state[f"trunk.{conv}"], imagenet[conv].half())
    assert not torch.equal(state[f"tuned.{conv}"], imagenet[conv].half())


def test_the_backend_reads_the_tuned_view_and_the_unchanged_roll(
    tuned_model_dir: Path, default_model_dir: Path, car_parts_dir: Path
) -> None:
    from models.view_training import load_rgb

    backend = DetectronBackend(tuned_model_dir, device="cpu")
    assert backend.view_classifier is not None and backend.view_classifier.net.tuned is not None
    rgb = load_rgb(car_parts_dir / "testset" / "JPEGImages" / "car10.jpg")
    cars = [d for d in backend.detect_array(rgb) if d.view_probs is not None]
    assert len(cars) == 1 and sum(cars[0].view_probs or ()) == pytest.approx(1.0, abs=1e-5)
    shipped = ViewClassifier.from_card(default_model_dir, json.loads((default_model_dir / "model.json").read_text()))
    assert shipped is not None and shipped.roll is not None
    shipped_read = shipped.read(rgb, cars[0].box)
    assert cars[0].roll_deg is not None and shipped_read.roll_deg is not None
    # The roll head reads the frozen trunk in both: the same roll to rounding.
    assert cars[0].roll_deg == pytest.approx(shipped_read.roll_deg, abs=0.05)
    assert cars[0].view_probs != pytest.approx(shipped_read.view_probs, abs=1e-3)
