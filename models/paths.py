"""Where the datasets live by default: beside the checkout in ../shared, read in place, never copied.

Kept free of heavy imports so the CLI, the benchmarks and the test fixtures can all use the same default.
"""

from __future__ import annotations

import os
from pathlib import Path

from service.settings import REPO_ROOT

DATASETS_DIR = REPO_ROOT.parent / "shared" / "datasets"


def _from_env(variable: str, default: Path) -> Path:
    path = Path(os.environ.get(variable, default))
    return path if path.is_absolute() else REPO_ROOT / path  # relative values are relative to the repo


DEFAULT_DATASET_DIR = _from_env("CARPOSE_DATASET_DIR", DATASETS_DIR / "car-parts")
DEFAULT_TURNTABLE_DIR = DATASETS_DIR / "carvana-turntable"
DEFAULT_VIEWS_FILE = _from_env("CARPOSE_VIEWS_FILE", DATASETS_DIR / "car-parts-views" / "trainingset-views.tsv")
