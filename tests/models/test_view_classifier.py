"""The learned view classifier end to end: trained by `models/view_training.py` on real labelled photos (a few,
briefly) into a copy of the embedded model directory (its detector finds real cars to crop), loaded by the
service's Detectron2 backend and used by the pose."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.paths import DEFAULT_VIEWS_FILE
from models.view_training import HeadRecipe, train_view_classifier
from service.backends.detectron import DetectronBackend
from service.backends.view_classifier import MIRRORED_INDEX, CropSpec, ViewClassifier, crop_car
from service.postprocess import VIEWS, PoseConfig, estimate_pose

PHOTOS = 10


@pytest.fixture(scope="module")
def trained_model_dir(default_model_dir: Path, car_parts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not DEFAULT_VIEWS_FILE.is_file():
        pytest.skip(f"view labels not found at {DEFAULT_VIEWS_FILE}")
    model_dir = tmp_path_factory.mktemp("with_views") / "model"
    shutil.copytree(default_model_dir, model_dir)
    recipe = HeadRecipe(epochs=2, jitter_variants=1, folds=2)
    images = car_parts_dir / "trainingset" / "JPEGImages"
    train_view_classifier(model_dir, DEFAULT_VIEWS_FILE, images, recipe=recipe, spec=CropSpec(size=96), limit=PHOTOS)
    return model_dir


def test_training_writes_the_classifier_and_its_held_out_figures(trained_model_dir: Path) -> None:
    entry = json.loads((trained_model_dir / "model.json").read_text())["view_classifier"]
    assert (trained_model_dir / entry["weights"]).is_file()
    held_out = entry["cross_validated"]
    assert held_out["photos"] == PHOTOS and held_out["folds"] == 2
    assert 0.0 <= held_out["eight_way"] <= 1.0 and 0.0 <= held_out["ece"] <= 1.0
    assert np.array(held_out["confusion"]["counts"]).sum() == PHOTOS
    assert len(entry["training_photos"]) == PHOTOS and entry["temperature"] > 0


def test_backend_attaches_probabilities_to_the_posed_car(trained_model_dir: Path, car_parts_dir: Path) -> None:
    from models.view_training import load_rgb

    backend = DetectronBackend(trained_model_dir, device="cpu")
    assert backend.view_classifier is not None
    rgb = load_rgb(car_parts_dir / "testset" / "JPEGImages" / "car10.jpg")
    detections = backend.detect_array(rgb)
    with_probs = [d for d in detections if d.view_probs is not None]
    # Without the rule's veto (tested in tests/postprocess/test_view_probs.py) and the evidence check (a classifier
    # trained on a few photos may contradict car10's rear parts: tests/service/test_verdicts.py) the view is the
    # classifier's.
    config = PoseConfig(rule_veto_strength=0.0, evidence_check=False)
    pose = estimate_pose(detections, (rgb.shape[1], rgb.shape[0]), config)
    assert pose.car is not None and pose.car.label == "car"
    assert len(with_probs) == 1 and with_probs[0].label == "car"
    probs = np.array(with_probs[0].view_probs)
    assert probs.shape == (len(VIEWS),) and probs.sum() == pytest.approx(1.0, abs=1e-5)
    # The pose answers the classifier's view with its probability as the confidence.
    assert pose.view == VIEWS[int(probs.argmax())]
    assert pose.confidence == pytest.approx(float(probs.max()), abs=1e-3)


def test_a_mirrored_photo_gets_the_mirrored_view(trained_model_dir: Path, car_parts_dir: Path) -> None:
    from models.view_training import load_rgb

    card = json.loads((trained_model_dir / "model.json").read_text())
    classifier = ViewClassifier.from_card(trained_model_dir, card)
    assert classifier is not None
    rgb = load_rgb(car_parts_dir / "trainingset" / "JPEGImages" / "train3.jpg")
    width = rgb.shape[1]
    box = (40.0, 60.0, width - 100.0, rgb.shape[0] - 20.0)
    mirrored_box = (width - box[2], box[1], width - box[0], box[3])
    probs = np.array(classifier.read(rgb, box).view_probs)
    mirrored = np.array(classifier.read(np.ascontiguousarray(rgb[:, ::-1]), mirrored_box).view_probs)
    # Mirror averaging makes the classifier exactly mirror-symmetric, up to the crop's pixel rounding.
    assert np.abs(mirrored - probs[list(MIRRORED_INDEX)]).max() < 0.02
    assert VIEWS[MIRRORED_INDEX[VIEWS.index("front_left")]] == "front_right"
    assert VIEWS[MIRRORED_INDEX[VIEWS.index("back")]] == "back"


def test_crop_keeps_the_aspect_and_pads_outside_the_photo() -> None:
    rgb = np.zeros((100, 200, 3), np.uint8)
    rgb[:, :100] = 255  # left half white
    crop = crop_car(rgb, (0.0, 25.0, 200.0, 75.0), CropSpec(size=64, context=1.0))
    assert crop.shape == (64, 64, 3)
    # A 200x50 box becomes a 200x200 square: the photo's 100 rows fill the middle half, grey above and below.
    assert (crop[2, 32] == 114).all() and (crop[-3, 32] == 114).all()
    assert crop[32, 5].min() == 255 and crop[32, -5].max() == 0
