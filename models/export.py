"""Write a model directory the service loads: config.yaml, weights, model.json."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import torch
from detectron2.config import CfgNode

from .paths import REPO_ROOT

WEIGHTS_FILE = "model_final.pth"


def code_version() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def serving_cfg(cfg: CfgNode) -> CfgNode:
    """The training config as the service needs it: no init weights to fetch, CPU unless told otherwise."""
    out = cfg.clone()
    out.defrost()
    out.MODEL.WEIGHTS = ""
    out.MODEL.DEVICE = "cpu"
    if "MOBILENET" in out.MODEL:
        out.MODEL.MOBILENET.IMAGENET_INIT = False
    return out


def export_model_dir(
    cfg: CfgNode,
    state_dict: dict[str, torch.Tensor],
    out_dir: str | Path,
    classes: list[str] | tuple[str, ...],
    card: dict[str, Any] | None = None,
    fp16: bool = True,
) -> Path:
    """fp16 storage halves the file; the service casts tensors back to the model's dtype on load."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(serving_cfg(cfg).dump())
    tensors = {
        k: (v.half() if fp16 and v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in state_dict.items()
    }
    torch.save({"model": tensors, "__author__": "carpose"}, out / WEIGHTS_FILE)
    now = dt.datetime.now(dt.timezone.utc)
    model_card: dict[str, Any] = {
        "name": str(cfg.CARPOSE.MODEL_NAME),
        "version": now.strftime("%Y.%m.%d-%H%M"),
        "date": now.isoformat(timespec="seconds"),
        "code_version": code_version(),
        "classes": list(classes),
        "weights": WEIGHTS_FILE,
        "weights_dtype": "float16" if fp16 else "float32",
    }
    model_card.update(card or {})
    (out / "model.json").write_text(json.dumps(model_card, indent=2) + "\n")
    return out


def load_checkpoint_state(path: str | Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    state: dict[str, torch.Tensor] = checkpoint.get("model", checkpoint)
    return state
