"""Agreement and calibration figures of `carpose eval --views` / `carpose train-views`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.view_metrics import (
    expected_calibration_error,
    format_confusion,
    precision_threshold,
    view_report,
)
from models.view_training import ViewLabel, fit_temperature, read_view_labels, stratified_folds
from service.backends.view_classifier import softmax


def test_ece_is_zero_when_confidence_matches_the_share_right() -> None:
    confidence = np.array([0.75] * 4 + [0.25] * 4)
    correct = np.array([1, 1, 1, 0, 1, 0, 0, 0], dtype=bool)
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.0)


def test_ece_of_an_overconfident_classifier() -> None:
    confidence = np.full(10, 0.95)
    correct = np.array([True] * 5 + [False] * 5)
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.45)


def test_precision_threshold_keeps_the_confident_right_ones() -> None:
    confidence = np.array([0.99, 0.98, 0.97, 0.90, 0.60, 0.50])
    correct = np.array([True, True, True, True, False, True])
    floor = precision_threshold(confidence, correct, target=0.97)
    assert floor["threshold"] == pytest.approx(0.90)
    assert floor["share"] == pytest.approx(4 / 6)
    assert floor["accuracy"] == 1.0
    assert precision_threshold(confidence, ~correct, target=0.97)["threshold"] is None


def test_report_counts_acceptable_neighbours_and_no_view() -> None:
    labels = [ViewLabel("front", ("front_left",)), ViewLabel("back", ()), ViewLabel("left", ())]
    report = view_report(["front_left", None, "front_left"], [0.9, 0.0, 0.6], labels)
    assert report["eight_way"] == pytest.approx(1 / 3)
    assert report["eight_way_strict"] == 0.0
    # front_left overlaps front; a front_left answer for a left label overlaps side too; no view is never right.
    assert report["coarse"] == pytest.approx(2 / 3)
    answered = view_report(["front_left", None, "front_left"], [0.9, 0.0, 0.6], labels, ["front", None, "front"])
    assert answered["coarse"] == pytest.approx(1 / 3)  # the answered azimuth says front: wrong for the left label
    counts = np.array(report["confusion"]["counts"])
    assert counts.sum() == 3 and counts[4, -1] == 1  # back -> none
    assert "none" in format_confusion(report["confusion"])


def test_labels_file_parsing(tmp_path: Path) -> None:
    path = tmp_path / "views.tsv"
    path.write_text("# file_name\tview\tacceptable_alternates\na.jpg\tfront\tfront_left,front_right\nb.jpg\tback\t\n")
    labels = read_view_labels(path)
    assert labels["a.jpg"] == ViewLabel("front", ("front_left", "front_right"))
    assert labels["b.jpg"] == ViewLabel("back", ())
    path.write_text("c.jpg\tsideways\t\n")
    with pytest.raises(ValueError, match="unknown view"):
        read_view_labels(path)


def test_folds_spread_every_view() -> None:
    labels = [0] * 10 + [1] * 5
    folds = stratified_folds(labels, 5, seed=0)
    for k in range(5):
        assert (folds[:10] == k).sum() == 2 and (folds[10:] == k).sum() == 1


def test_temperature_fit_recovers_an_overconfident_scale() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 8, 2000)
    true_logits = rng.normal(0, 1, (2000, 8))
    true_logits[np.arange(2000), labels] += 2.0
    # Sample labels from the true model, then present logits 3x too sharp: the fit should undo the factor.
    probs = softmax(true_logits, 1.0)
    sampled = np.array([rng.choice(8, p=p) for p in probs])
    temperature = fit_temperature(true_logits * 3.0, sampled)
    assert 2.4 < temperature < 3.6
