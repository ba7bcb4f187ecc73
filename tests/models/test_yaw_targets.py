"""The continuous yaw the view classifier learns: soft targets that encode a yaw, the served decode that reads it
back, mirror images that negate it, the labelled views that bound it, and web-framed training crops."""

from __future__ import annotations

import numpy as np
import pytest

from models.view_training import ViewLabel, label_yaw, soft_view_target, web_framed_crop
from service.backends.view_classifier import MIRRORED_INDEX, CropSpec
from service.postprocess import VIEWS, view_of
from service.postprocess.geometry import angle_diff_deg
from service.postprocess.view_probs import azimuth_from_probs

YAWS = [0.0, 10.0, 22.5, 37.0, 44.9, 90.0, 133.0, 180.0, 200.0, 269.0, 300.0, 337.4, 359.0]


@pytest.mark.parametrize("yaw", YAWS)
def test_the_decode_reads_back_the_target_yaw(yaw: float) -> None:
    target = soft_view_target(yaw)
    assert target.sum() == pytest.approx(1.0) and (target >= 0).all()
    index = int(np.argmax(target))
    azimuth = azimuth_from_probs(target.astype(float), index)
    assert view_of(azimuth) == VIEWS[index]  # view and azimuth never contradict each other
    assert angle_diff_deg(azimuth, yaw) < 0.15  # exact up to the inset that keeps a bin edge inside the view


@pytest.mark.parametrize("yaw", YAWS)
def test_a_mirror_image_negates_the_yaw(yaw: float) -> None:
    # The mirrored photo's target is the photo's target with the views mirrored (what mirror-averaging assumes).
    np.testing.assert_allclose(soft_view_target(-yaw), soft_view_target(yaw)[list(MIRRORED_INDEX)], atol=1e-6)


def test_label_yaw_keeps_the_fit_inside_the_labelled_views() -> None:
    front_left = ViewLabel("front_left", ())
    assert label_yaw(front_left, 50.0) == 50.0  # inside the bin: kept
    assert label_yaw(front_left, 10.0) == 23.0  # just outside: moved inside the bin
    assert label_yaw(front_left, 200.0) == 45.0  # the other end of the car: the fit is ignored, the bin centre
    assert label_yaw(front_left, None) == 45.0
    # With an acceptable neighbour the yaw lies near the shared edge.
    edge = ViewLabel("front", ("front_right",))
    assert label_yaw(edge, None) == pytest.approx(337.5)
    assert label_yaw(edge, 0.0) == pytest.approx(348.75 - 0.5)
    assert label_yaw(ViewLabel("back", ()), 181.0) == 181.0


def test_web_framed_crop_is_a_network_input() -> None:
    rng = np.random.default_rng(0)
    photo = np.full((300, 500, 3), 60, np.uint8)
    photo[100:250, 100:400] = 200  # the "car"
    spec = CropSpec(size=64)
    for _ in range(5):
        crop = web_framed_crop(photo, (100.0, 100.0, 400.0, 250.0), rng, spec)
        assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
        assert crop[32, 32].mean() > 120  # the car stays in the middle of the crop
