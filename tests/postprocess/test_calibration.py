"""The committed part-size constants: complete, positive, and reproducible from the training split."""

from __future__ import annotations

import ast
from pathlib import Path

from models.calibrate import calibrate, render_module
from service.postprocess import PART_LABELS, PART_NORMAL_DEG
from service.postprocess.part_areas import K_BOX, K_MASK, K_WIDTH


def test_constants_cover_every_part() -> None:
    for table in (K_WIDTH, K_BOX, K_MASK):
        assert set(table) == set(PART_LABELS)
        assert all(v > 0 for v in table.values())
    assert set(PART_NORMAL_DEG) == set(PART_LABELS) - {"wheel"}


def test_committed_constants_match_a_fresh_calibration(car_parts_dir: Path) -> None:
    cal = calibrate(car_parts_dir / "trainingset" / "annotations.json")
    assert cal.k_width == K_WIDTH
    assert cal.k_box == K_BOX
    assert cal.k_mask == K_MASK
    ast.parse(render_module(cal))
