"""Both training recipes run real iterations on the CPU and export a model directory the service loads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from service.cli import main as carpose

# Small inputs and one image per batch: the point is that the pipeline runs end to end, not accuracy.
FAST = [
    "INPUT.MIN_SIZE_TRAIN", "(256,)",
    "INPUT.MAX_SIZE_TRAIN", "320",
    "INPUT.MIN_SIZE_TEST", "256",
    "INPUT.MAX_SIZE_TEST", "320",
    "SOLVER.IMS_PER_BATCH", "1",
    "SOLVER.WARMUP_ITERS", "1",
    "SOLVER.CHECKPOINT_PERIOD", "1",
    "DATALOADER.NUM_WORKERS", "0",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32",
]  # fmt: skip


def _assert_loadable(model_dir: Path, name: str) -> None:
    from service.backends.detectron import DetectronBackend

    card = json.loads((model_dir / "model.json").read_text())
    assert card["name"] == name
    assert card["classes"][-1] == "car" and len(card["classes"]) == 19
    assert card["weights_dtype"] == "float16"
    history = json.loads((model_dir / "train_history.json").read_text())
    assert history and {"iteration", "total_loss", "loss_mask"} <= set(history[-1])
    backend = DetectronBackend(model_dir, device="cpu", score_threshold=0.5)
    detections = backend.detect_array(np.full((240, 320, 3), 127, np.uint8))
    assert all(d.label in card["classes"] for d in detections)
    assert (model_dir / "report.md").is_file()


@pytest.mark.slow
def test_gpu_recipe_runs_a_few_iterations_on_cpu(car_parts_dir: Path, tmp_path: Path) -> None:
    # No COCO weights can be downloaded here: start from random weights, which exercises the same code path.
    code = carpose(
        ["train", "--recipe", "gpu_r50_fpn", "--device", "cpu", "--weights", "", "--max-iter", "2", "--skip-eval",
         "--dataset", str(car_parts_dir), "--run-dir", str(tmp_path / "run"), "--output-dir", str(tmp_path / "model"),
         *FAST]
    )  # fmt: skip
    assert code == 0
    _assert_loadable(tmp_path / "model", "carparts_r50_fpn")
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.json").read_text().splitlines()]
    assert max(m["iteration"] for m in metrics) == 1


@pytest.mark.slow
def test_cpu_recipe_trains_resumes_and_exports(car_parts_dir: Path, tmp_path: Path) -> None:
    args = ["train", "--recipe", "cpu_mnv2_fpn", "--skip-eval", "--dataset", str(car_parts_dir),
            "--run-dir", str(tmp_path / "run"), "--output-dir", str(tmp_path / "model"), "--threads", "2"]  # fmt: skip
    assert carpose([*args, "--max-iter", "2", *FAST]) == 0
    first_checkpoint = tmp_path / "run" / "model_0000000.pth"
    written = first_checkpoint.stat().st_mtime_ns
    assert (tmp_path / "run" / "model_0000001.pth").is_file()
    # A second run with a longer schedule resumes from the last checkpoint instead of starting over: iteration 0
    # is not trained (nor checkpointed) again, iteration 2 is.
    assert carpose([*args, "--max-iter", "3", *FAST]) == 0
    assert first_checkpoint.stat().st_mtime_ns == written
    iterations = [
        json.loads(line)["iteration"] for line in (tmp_path / "run" / "metrics.json").read_text().splitlines()
    ]
    assert iterations == [1, 2]
    _assert_loadable(tmp_path / "model", "carparts_mnv2_fpn")


@pytest.mark.slow
def test_web_recipe_fine_tunes_an_exported_model_on_tight_crops(car_parts_dir: Path, tmp_path: Path) -> None:
    common = ["--skip-eval", "--dataset", str(car_parts_dir), "--threads", "2"]
    first = ["train", "--recipe", "cpu_mnv2_fpn", "--run-dir", str(tmp_path / "run"), "--output-dir",
             str(tmp_path / "model"), "--max-iter", "1", *common, *FAST]  # fmt: skip
    assert carpose(first) == 0
    weights = tmp_path / "model" / "model_final.pth"
    web = ["train", "--recipe", "cpu_mnv2_fpn_web", "--weights", str(weights), "--run-dir", str(tmp_path / "web"),
           "--output-dir", str(tmp_path / "web_model"), "--max-iter", "2", *common, *FAST,
           "CARPOSE.TIGHT_CROP", "1.0"]  # fmt: skip
    assert carpose(web) == 0
    _assert_loadable(tmp_path / "web_model", "carparts_mnv2_fpn")
    card = json.loads((tmp_path / "web_model" / "model.json").read_text())
    assert card["initial_weights"] == str(weights) and card["tight_crop"] == 1.0
