"""geometry.signed_delta_deg: the one signed angle difference of the service and the training code."""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.guidance import wrap_deg as walk_wrap
from service.postprocess.geometry import VIEW_BIN_DEG, signed_delta_deg
from service.postprocess.view_probs import EDGE_INSET_DEG, clamp_into_bin, into_bin


@pytest.mark.parametrize(
    ("a", "b", "delta"),
    [
        (10.0, 350.0, 20.0),  # across 0, counter-clockwise
        (350.0, 10.0, -20.0),  # across 0, clockwise
        (359.5, 0.5, -1.0),
        (765.0, 0.0, 45.0),  # two turns and 45
        (-45.0, 0.0, -45.0),
        (0.0, 0.0, 0.0),
        (179.5, 0.0, 179.5),  # just inside the top
        (-179.5, 0.0, -179.5),
    ],
)
def test_signed_delta(a: float, b: float, delta: float) -> None:
    assert signed_delta_deg(a, b) == pytest.approx(delta)


@pytest.mark.parametrize(("a", "b"), [(180.0, 0.0), (0.0, 180.0), (-180.0, 0.0), (540.0, 0.0), (90.0, 270.0)])
def test_exactly_opposite_is_minus_180(a: float, b: float) -> None:
    """Half-open [-180, 180): +180 is never answered; the callers in view_probs rely on it (below)."""
    assert signed_delta_deg(a, b) == -180.0


def test_range_and_congruence_on_a_grid() -> None:
    for a in np.arange(-720.0, 720.0, 22.5):
        for b in np.arange(-360.0, 360.0, 37.5):
            delta = signed_delta_deg(float(a), float(b))
            assert -180.0 <= delta < 180.0
            assert math.remainder(delta - (a - b), 360.0) == pytest.approx(0.0, abs=1e-9)


def test_arrays_elementwise_like_scalars() -> None:
    a = np.array([0.0, 45.0, 180.0, 350.0, -30.0])
    out = signed_delta_deg(a, 10.0)
    assert isinstance(out, np.ndarray)
    assert out.tolist() == [signed_delta_deg(float(x), 10.0) for x in a]


def test_an_azimuth_opposite_a_bin_goes_to_its_lower_edge() -> None:
    """into_bin / clamp_into_bin on an azimuth exactly opposite the bin's centre: -180 picks the lower edge."""
    limit = VIEW_BIN_DEG / 2.0 - EDGE_INSET_DEG
    assert into_bin(180.0, 0) == pytest.approx(360.0 - limit)
    assert clamp_into_bin(180.0, 0) == pytest.approx(360.0 - limit)
    assert clamp_into_bin(0.0, 4) == pytest.approx(180.0 - limit)


def test_the_walk_keeps_its_own_convention_plus_180() -> None:
    """guidance's walk_deg is in (-180, 180]: half a turn is +180, where the signed delta says -180."""
    assert walk_wrap(-180.0) == 180.0
    assert walk_wrap(180.0) == 180.0
    assert walk_wrap(540.0) == 180.0
    assert walk_wrap(-179.5) == -179.5
