"""Guided capture on turntable photos of known yaw: is the walk's direction right, and its size within 20 degrees?

    .venv/bin/python -m benchmarks.guidance [--turntable DIR] [--model-dir DIR] [--device auto] [--json]

(--turntable: default $CARPOSE_DATA_ROOT/carvana-turntable, 64 photos <car>_<NN>.jpg whose camera azimuth is
(NN - 1) x 22.5 degrees, the service's own convention; evaluation only, read in place.)

Every photo goes once through the runtime as POST /pose runs it (decode, detect, pose, quality, the API answer)
and is then guided toward each of the eight views, 64 x 8 = 512 cases. The truth is `walk_to(true azimuth,
target)`. Printed: the share of cases off target (the true azimuth outside the target's 45-degree bin) where the
walk's direction is right (a target straight behind, |truth| = 180, accepts either way; no `walk_deg` is wrong),
the share of all cases with `walk_deg` within 20 degrees of the truth, and how often `on_target` agrees with the
truth (a half-step photo on a bin edge is on target for both neighbours).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from models.paths import DEFAULT_TURNTABLE_DIR
from models.turntable import NAME_PATTERN, STEP_DEG, acceptable_views
from service.backends.detectron import DetectronBackend
from service.guidance import guide, walk_to, wrap_deg
from service.postprocess import VIEWS
from service.response import to_response
from service.runtime import Runtime
from service.settings import DEFAULT_MODEL_DIR, Settings

HALF_BIN_DEG = 22.5
WITHIN_DEG = 20.0
TARGET_DIRECTION, TARGET_WITHIN = 0.97, 0.90  # issue 22's targets


def cases(turntable_dir: Path, model_dir: Path, device: str) -> list[dict[str, Any]]:
    settings = Settings(model_dir=model_dir, device=device)  # the service's defaults (and POSE_* environment)
    backend = DetectronBackend(model_dir, device=device, score_threshold=settings.score_threshold)
    runtime = Runtime.from_settings(backend, settings)
    rows: list[dict[str, Any]] = []
    for path in sorted(turntable_dir.iterdir()):
        match = NAME_PATTERN.match(path.name)
        if not match:
            continue
        truth_az = (int(match["step"]) - 1) * STEP_DEG
        prediction = runtime.predict(path.read_bytes())
        answer = to_response(
            prediction.pose, prediction.image, backend, prediction.timings_ms, None, prediction.quality
        )
        for target in VIEWS:
            guidance = guide(answer, target)
            truth = walk_to(truth_az, target)
            rows.append(
                {
                    "file": path.name,
                    "true_azimuth": truth_az,
                    "azimuth": answer.azimuth_deg,
                    "target": target,
                    "true_walk": truth,
                    "walk": guidance.walk_deg,
                    "on_target": guidance.on_target,
                    "truly_on_target": target in acceptable_views(truth_az),
                    "codes": [fix.code for fix in guidance.fixes],
                }
            )
    return rows


def direction_right(row: dict[str, Any]) -> bool:
    if row["walk"] is None:
        return False
    if abs(row["true_walk"]) >= 180.0 - 1e-6:  # straight behind: either way round is as short
        return True
    return (row["walk"] > 0) == (row["true_walk"] > 0)


def within(row: dict[str, Any]) -> bool:
    return row["walk"] is not None and abs(wrap_deg(row["walk"] - row["true_walk"])) <= WITHIN_DEG


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    off = [r for r in rows if abs(r["true_walk"]) > HALF_BIN_DEG]
    # The fix code must say the same as the sign of walk_deg (walk_left: clockwise, positive).
    codes_agree = all(
        ("walk_left" in r["codes"]) == (r["walk"] is not None and r["walk"] >= 0 and not r["on_target"])
        and ("walk_right" in r["codes"]) == (r["walk"] is not None and r["walk"] < 0 and not r["on_target"])
        for r in rows
    )
    return {
        "photos": len({r["file"] for r in rows}),
        "cases": len(rows),
        "off_target_cases": len(off),
        "direction_right_share": sum(map(direction_right, off)) / max(1, len(off)),
        "within_20_share": sum(map(within, rows)) / max(1, len(rows)),
        "within_20_share_off_target": sum(map(within, off)) / max(1, len(off)),
        "on_target_agreement": sum(r["on_target"] == r["truly_on_target"] for r in rows) / max(1, len(rows)),
        "walk_codes_agree_with_sign": codes_agree,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turntable", type=Path, default=DEFAULT_TURNTABLE_DIR)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true", help="print every case as a JSON line first")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = cases(args.turntable, args.model_dir, args.device)
    if args.json:
        for row in rows:
            print(json.dumps(row))
    result = summary(rows)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))
    print(
        f"direction right {result['direction_right_share']:.1%} of {result['off_target_cases']} off-target cases "
        f"(target >= {TARGET_DIRECTION:.0%}); walk_deg within {WITHIN_DEG:.0f} deg {result['within_20_share']:.1%} "
        f"of {result['cases']} (target >= {TARGET_WITHIN:.0%})"
    )


if __name__ == "__main__":
    main()
