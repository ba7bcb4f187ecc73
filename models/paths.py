"""Where the datasets live: one data root, `CARPOSE_DATA_ROOT` (default ../shared/datasets, beside the checkout).

Every dataset is a folder of that root, named as in models/datasets.json (`carpose data` fills it). The CLI,
the benchmarks, the tests and docker-compose.yml all read the root from here or from the same variable; data is
read in place, never copied into the repository. Kept free of heavy imports so that all of them can use it.
"""

from __future__ import annotations

import os
from pathlib import Path

from service.settings import REPO_ROOT

DATA_ROOT_VARIABLE = "CARPOSE_DATA_ROOT"
DEFAULT_DATA_ROOT = Path("..") / "shared" / "datasets"  # relative to the checkout, as in docker-compose.yml


def data_root() -> Path:
    """$CARPOSE_DATA_ROOT (a relative value is relative to the checkout), else ../shared/datasets."""
    path = Path(os.environ.get(DATA_ROOT_VARIABLE) or DEFAULT_DATA_ROOT)
    return (path if path.is_absolute() else REPO_ROOT / path).resolve()


DATASETS_DIR = data_root()
DEFAULT_DATASET_DIR = DATASETS_DIR / "car-parts"
DEFAULT_TURNTABLE_DIR = DATASETS_DIR / "carvana-turntable"
DEFAULT_VIEWS_FILE = DATASETS_DIR / "car-parts-views" / "trainingset-views.tsv"
