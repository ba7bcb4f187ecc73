"""Photos per second of `carpose batch` (Ray Data, one actor per CPU) against `carpose predict` (one process).

    python -m benchmarks.batch [--model-dir DIR] [--images 20] [--dataset DIR] [--num-cpus N]

Both commands run as they would from a shell, on the same photos (the first N of the Car Parts test split, in
name order) and the same model, one after the other; each is timed from start to exit, so the model loads (and
for batch, Ray's start) are included, and timed again without them: `predict` from its first row to its last
(the first row's time is one photo's, so N-1 photos over that span), `batch` over its progress bar's time.
Not a test: timings depend on the machine; read them next to its load (printed).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from models.paths import DEFAULT_DATASET_DIR
from service.settings import DEFAULT_MODEL_DIR

CLI = [sys.executable, "-m", "service.cli"]


def run_predict(model_dir: Path, photos: list[Path]) -> tuple[float, float]:
    """(wall seconds, photos/s between the first row and the last)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [*CLI, "predict", "--model-dir", str(model_dir), "--device", "cpu", *map(str, photos)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    stamps = [time.perf_counter() for _line in process.stdout]
    process.wait()
    wall = time.perf_counter() - started
    assert len(stamps) == len(photos), f"predict printed {len(stamps)} rows for {len(photos)} photos"
    return wall, (len(stamps) - 1) / (stamps[-1] - stamps[0])


def run_batch(model_dir: Path, photos: list[Path], num_cpus: int) -> tuple[float, float]:
    """(wall seconds, photos/s over the progress bar's elapsed time: from the start of the scoring, the actors'
    model loads included, Ray's own start not)."""
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "manifest.txt"
        manifest.write_text("".join(f"{p}\n" for p in photos))
        output = Path(tmp) / "results.jsonl"
        command = [*CLI, "batch", str(manifest), "--output", str(output), "--model-dir", str(model_dir)]
        started = time.perf_counter()
        env = {**os.environ, "CARPOSE_PROGRESS": "1"}  # the bar's timing, although stderr is a pipe
        done = subprocess.run(
            [*command, "--num-cpus", str(num_cpus)], capture_output=True, text=True, check=True, env=env
        )
        wall = time.perf_counter() - started
        rows = output.read_text().splitlines()
    assert len(rows) == len(photos), f"batch wrote {len(rows)} rows for {len(photos)} photos"
    minutes, seconds = re.findall(rf"{len(photos)}/{len(photos)} \[(\d+):(\d+)<", done.stderr)[-1]
    return wall, len(photos) / max(1, int(minutes) * 60 + int(seconds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET_DIR)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count() or 1, help="CPUs of batch's local Ray")
    args = parser.parse_args(argv)

    photos = sorted((args.dataset / "testset" / "JPEGImages").glob("*.jpg"))[: args.images]
    print(f"{len(photos)} photos, model {args.model_dir}, {os.cpu_count()} cores, load {os.getloadavg()}")
    p_wall, p_rate = run_predict(args.model_dir, photos)
    print(f"carpose predict: {p_wall:.1f} s wall = {len(photos) / p_wall:.2f} photos/s; {p_rate:.2f} photos/s loaded")
    b_wall, b_rate = run_batch(args.model_dir, photos, args.num_cpus)
    print(
        f"carpose batch ({args.num_cpus} actors): {b_wall:.1f} s wall = {len(photos) / b_wall:.2f} photos/s; "
        f"{b_rate:.2f} photos/s over the progress bar (actor model loads included)"
    )
    print(f"load after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
