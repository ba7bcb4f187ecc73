"""The part vocabulary is one table, and everything that lists labels, views or reasons agrees with it."""

from __future__ import annotations

import typing

from service import schemas
from service.postprocess import vocabulary
from service.postprocess.part_areas import K_MASK, K_WIDTH
from service.postprocess.vocabulary import (
    COARSE_VIEWS,
    MIRROR_PAIRS,
    MODEL_CLASSES,
    PART_LABELS,
    PART_NORMAL_DEG,
    PARTS,
    REASONS,
    VIEWS,
    mirror_label,
)


def test_schema_literals_are_the_vocabulary() -> None:
    assert typing.get_args(schemas.View) == VIEWS
    assert typing.get_args(schemas.CoarseView) == COARSE_VIEWS
    assert typing.get_args(schemas.Reason) == REASONS


def test_mirror_is_an_involution_that_swaps_left_and_right() -> None:
    for spec in PARTS:
        assert mirror_label(mirror_label(spec.label)) == spec.label
        expected = spec.label.replace("left", "#").replace("right", "left").replace("#", "right")
        assert spec.mirror == expected, spec
    assert {a for a, _ in MIRROR_PAIRS} | {b for _, b in MIRROR_PAIRS} == {
        p.label for p in PARTS if "left" in p.label or "right" in p.label
    }
    assert mirror_label("car") == "car" and mirror_label("unknown") == "unknown"


def test_mirrored_normals_and_weights_are_mirror_images() -> None:
    specs = {p.label: p for p in PARTS}
    for spec in PARTS:
        twin = specs[spec.mirror]
        assert twin.weight == spec.weight and twin.face == spec.face.replace("left", "#").replace(
            "right", "left"
        ).replace("#", "right")
        if spec.normal_deg is not None:
            assert twin.normal_deg is not None and (spec.normal_deg + twin.normal_deg) % 360.0 == 0.0


def test_every_cue_part_is_calibrated() -> None:
    assert set(PART_NORMAL_DEG) <= set(K_MASK) and set(PART_NORMAL_DEG) <= set(K_WIDTH)
    assert set(PART_LABELS) == set(K_MASK)
    assert (*PART_LABELS, "car") == MODEL_CLASSES and tuple(sorted(PART_LABELS)) == PART_LABELS
    assert vocabulary.REASON_LOW_CONFIDENCE in REASONS
