"""Amazon SageMaker's side of the model: where it unpacks a model's ModelDataUrl archive, for `carpose serve
--sagemaker` (the HTTP contract itself, /ping and /invocations, is `service.api.routers.sagemaker`)."""

from __future__ import annotations

from pathlib import Path

SAGEMAKER_MODEL_ROOT = Path("/opt/ml/model")
MODEL_FILES = ("config.yaml", "model_final.pth")


def find_model_dir(root: Path = SAGEMAKER_MODEL_ROOT) -> Path | None:
    """The model directory SageMaker unpacked: `root` itself or its one subdirectory holding a model, else None.

    A model.tar.gz made with `tar -C models -czf model.tar.gz carparts_r50_fpn` unpacks into a subdirectory,
    one made with `-C models/carparts_r50_fpn .` into the root: both are accepted.
    """
    if not root.is_dir():
        return None
    candidates = [root, *sorted(p for p in root.iterdir() if p.is_dir())]
    found = [p for p in candidates if all((p / name).is_file() for name in MODEL_FILES)]
    return found[0] if len(found) == 1 else None
