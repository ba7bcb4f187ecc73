"""Agreement and calibration figures of `carpose eval --views` / `carpose train-views`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.view_metrics import (
    ece_interval,
    ece_interval_text,
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


def test_ece_interval_brackets_the_ece_and_narrows_with_more_photos() -> None:
    rng = np.random.default_rng(3)
    confidence = rng.uniform(0.5, 1.0, 400)
    correct = rng.uniform(size=400) < confidence  # calibrated by construction
    ece = expected_calibration_error(confidence, correct)
    few, many = ece_interval(confidence[:100], correct[:100]), ece_interval(confidence, correct)
    assert few is not None and many is not None
    assert many[0] <= ece <= many[1]
    assert many[1] - many[0] < few[1] - few[0]
    assert ece_interval(confidence, correct) == many  # fixed seed: reproducible figures
    assert ece_interval(confidence[:1], correct[:1]) is None
    assert ece_interval_text({"ece_interval_95": many}).startswith(" (95% bootstrap interval 0.")
    assert ece_interval_text({}) == ""


def test_precision_threshold_keeps_the_confident_right_ones() -> None:
    confidence = np.array([0.99, 0.98, 0.97, 0.90, 0.60, 0.50])
    correct = np.array([True, True, True, True, False, True])
    floor = precision_threshold(confidence, correct, target=0.97)
    assert floor["threshold"] == pytest.approx(0.90)
    assert floor["share"] == pytest.approx(4 / 6)
    assert floor["accuracy"] == 1.0
    assert precision_threshold(confidence, ~correct, target=0.97)["threshold"] is None


def test_precision_threshold_never_cuts_inside_a_tie() -> None:
    # Rounded answers tie: a floor at 0.95 admits both photos at 0.95, the wrong one too, so it is not a floor that
    # keeps the views right >= 97%; the next distinct confidence up is.
    confidence = np.array([0.99] * 30 + [0.95, 0.95])
    correct = np.array([True] * 30 + [True, False])
    floor = precision_threshold(confidence, correct, target=0.97)
    assert floor["threshold"] == pytest.approx(0.99)
    assert floor["share"] == pytest.approx(30 / 32) and floor["accuracy"] == 1.0


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
