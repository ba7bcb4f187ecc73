"""`carpose eval --yaw`: the served azimuth against measured yaws, on a tiny generated labels file of test-split
photos (never the evaluation-only web set), and the yaw figures' arithmetic on hand-made answers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from models.yaw_metrics import YawAnswer, failure_kind, signed_error, yaw_report
from service.cli import main as carpose

# Test-split photos labelled by eye (models/eval/testset-views.tsv), with the labelled view's centre as their yaw.
PHOTOS = {"car4.jpg": 315.0, "car5.jpg": 135.0, "car6.jpg": 45.0}


def test_signed_error_wraps() -> None:
    assert signed_error(350.0, 10.0) == -20.0
    assert signed_error(10.0, 350.0) == 20.0
    assert signed_error(180.0, 0.0) == -180.0


@pytest.mark.parametrize(
    ("answered", "truth", "kind"),
    [
        (50.0, 40.0, "ok"),
        (140.0, 40.0, "flip"),  # front_left read as back_left: same side, other end
        (320.0, 40.0, "mirror"),  # front_left read as front_right
        (100.0, 40.0, "neighbour"),
        (230.0, 40.0, "other"),
        (None, 40.0, "none"),
    ],
)
def test_failure_kinds(answered: float | None, truth: float, kind: str) -> None:
    assert failure_kind(answered, truth) == kind


def test_yaw_report_figures() -> None:
    answers = [
        YawAnswer(10.0, 14.0, "front", 0.9),  # +4, right bin
        YawAnswer(40.0, 30.0, "front_left", 0.8),  # -10, right bin
        YawAnswer(180.0, 0.0, "front", 0.7),  # flip, 180 off
        YawAnswer(90.0, None, None, 0.0),  # no answer counts as 180 off
    ]
    report = yaw_report(answers)
    assert report["photos"] == 4 and report["answered"] == 3
    assert report["within_30"] == 0.5 and report["within_15"] == 0.5
    assert report["median_error"] == pytest.approx((10.0 + 180.0) / 2)
    assert report["eight_way"] == 0.5
    assert report["bias"] == pytest.approx((4.0 - 10.0 - 180.0) / 3)
    assert report["failures"]["flip"] == 0.25 and report["failures"]["none"] == 0.25
    assert report["by_true_view"]["front"]["photos"] == 1 and report["by_true_view"]["left"]["within_30"] == 0.0
    assert 0.0 <= report["ece"] <= 1.0


def test_eval_yaw_command(
    default_model_dir: Path, car_parts_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "photos"
    images.mkdir()
    lines = ["# file\tyaw_deg\televation_deg"]
    for name, yaw in PHOTOS.items():
        shutil.copy(car_parts_dir / "testset" / "JPEGImages" / name, images / name)
        lines.append(f"{name}\t{yaw}\t5.0")
    labels = images / "labels.tsv"
    labels.write_text("\n".join(lines) + "\n")
    model_dir = tmp_path / "model"
    shutil.copytree(default_model_dir, model_dir)
    rows = tmp_path / "rows.jsonl"

    assert carpose(["eval", "--model-dir", str(model_dir), "--yaw", str(labels), "--rows", str(rows), "--write"]) == 0
    printed = capsys.readouterr().out
    assert "photos: 3 photos (0 named but missing), 3 with an azimuth" in printed
    assert "within 30 deg" in printed and "by true view" in printed
    per_photo = [json.loads(line) for line in rows.read_text().splitlines()]
    assert sorted(r["file"] for r in per_photo) == sorted(PHOTOS)
    assert all(r["azimuth"] is not None for r in per_photo)
    card = json.loads((model_dir / "model.json").read_text())["yaw_evaluation"]
    assert card["set"] == "photos" and card["photos"] == 3
    assert "file" not in json.dumps(card)  # aggregates only: no per-photo labels in the model card
    assert (model_dir / "yaw_scatter.png").is_file() and (model_dir / "yaw_error_histogram.png").is_file()
    assert "## Yaw on web photos (photos, 3 photos" in (model_dir / "report.md").read_text()
