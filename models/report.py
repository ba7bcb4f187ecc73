"""`models/<name>/report.md` with PNG plots, so a person sees at a glance what a model can and cannot do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers or CI
import matplotlib.pyplot as plt
import numpy as np

from .evaluation import VIEW_AXIS, confusion_matrix

HISTORY_FILE = "train_history.json"
LOSS_KEYS = ("total_loss", "loss_cls", "loss_box_reg", "loss_mask", "loss_rpn_cls", "loss_rpn_loc")

# name -> (metric key, goal); a goal of None marks a row shown for context, not a target of the issue.
TARGETS: dict[str, tuple[str, float | None]] = {
    "mask AP": ("segm.AP", 40.0),
    "wheel box AP50": ("wheel_box_AP50", 90.0),
    "view agreement, eight views": ("view_agreement.eight_way", 0.85),
    "view agreement, eight views, at most one bin off": ("view_agreement.eight_way_within_one_bin", None),
    "view agreement, front/back/side": ("view_agreement.coarse", 0.97),
}


def condense_history(metrics_json: Path) -> list[dict[str, float]]:
    """Detectron2's metrics.json (one JSON object per logged iteration) -> the losses per iteration."""
    rows = []
    for line in metrics_json.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "iteration" in record and "total_loss" in record:
            rows.append({k: float(record[k]) for k in ("iteration", "lr", *LOSS_KEYS) if k in record})
    return rows


def _get(metrics: dict[str, Any], dotted: str) -> float | None:
    value: Any = metrics
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value)


def plot_loss(history: list[dict[str, float]], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    its = [r["iteration"] for r in history]
    for key in LOSS_KEYS:
        if history and key in history[0]:
            ax.plot(its, [r.get(key, np.nan) for r in history], label=key, linewidth=2 if key == "total_loss" else 1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title("Training losses")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_per_class_ap(metrics: dict[str, Any], out: Path) -> None:
    box = metrics["bbox"]["per_class_AP"]
    mask = metrics["segm"]["per_class_AP"]
    names = list(box)
    y = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.barh(y - 0.2, [box[n] for n in names], height=0.4, label="box AP")
    ax.barh(y + 0.2, [mask.get(n, 0.0) for n in names], height=0.4, label="mask AP")
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("AP (COCO, IoU .50:.95)")
    ax.set_xlim(0, 100)
    ax.legend()
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Per-class AP on the test split")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_confusion(metrics: dict[str, Any], out: Path) -> None:
    matrix = confusion_matrix(metrics["view_agreement"]["confusion"])
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(VIEW_AXIS)), VIEW_AXIS, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(VIEW_AXIS)), VIEW_AXIS, fontsize=8)
    ax.set_xlabel("view from the model's detections")
    ax.set_ylabel("view from the ground-truth parts")
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            ax.text(
                j,
                i,
                str(count),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if count > matrix.max() / 2 else "black",
            )
    ax.set_title("View confusion (test split)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def write_report(model_dir: Path, notes: str = "") -> Path:
    card = json.loads((model_dir / "model.json").read_text())
    metrics = card.get("metrics")
    lines = [f"# Model report: {card['name']} ({card['version']})", ""]
    lines += [
        f"- Recipe: `{card.get('recipe', '?')}`; training data: {card.get('training_data', '?')}",
        f"- Trained: {card.get('date', '?')} from code `{card.get('code_version', '?')}`",
        f"- Classes ({len(card['classes'])}): {', '.join(card['classes'])}",
        "",
    ]
    history_path = model_dir / HISTORY_FILE
    if history_path.is_file():
        history = json.loads(history_path.read_text())
        if history:
            plot_loss(history, model_dir / "loss_curve.png")
            lines += ["## Training", "", "![loss curve](loss_curve.png)", ""]
    if metrics:
        plot_per_class_ap(metrics, model_dir / "per_class_ap.png")
        plot_confusion(metrics, model_dir / "view_confusion.png")
        latency = metrics["latency_ms"]
        lines += [
            f"## Targets ({metrics['split']} split, {metrics['images']} images)",
            "",
            "| target | goal | reached | met |",
            "|---|---|---|---|",
        ]
        for name, (key, goal) in TARGETS.items():
            value = _get(metrics, key)
            if value is None:
                continue
            if goal is None:
                lines.append(f"| {name} | (context) | {value:.1%} | |")
                continue
            shown = f"{value:.1%}" if goal < 1 else f"{value:.1f}"
            goal_shown = f"{goal:.0%}" if goal < 1 else f"{goal:.0f}"
            lines.append(f"| {name} | {goal_shown} | {shown} | {'yes' if value >= goal else 'no'} |")
        lines.append(
            f"| CPU inference at {latency['min_size_test']} px short side | well under 1 s | "
            f"p50 {latency['p50']:.0f} ms, p95 {latency['p95']:.0f} ms ({latency['device']}) | "
            f"{'yes' if latency['p50'] < 1000 else 'no'} |"
        )
        lines += [
            "",
            f"Box AP {metrics['bbox']['AP']:.1f} (AP50 {metrics['bbox']['AP50']:.1f}), "
            f"mask AP {metrics['segm']['AP']:.1f} (AP50 {metrics['segm']['AP50']:.1f}). View agreement is measured "
            f"on the {metrics['view_agreement']['images_with_ground_truth_view']} test images whose ground-truth parts "
            "give a view.",
            "",
            "## Per class",
            "",
            "![per-class AP](per_class_ap.png)",
            "",
            "| class | box AP | box AP50 | mask AP |",
            "|---|---|---|---|",
        ]
        for name, ap in metrics["bbox"]["per_class_AP"].items():
            lines.append(
                f"| {name} | {ap:.1f} | {metrics['bbox']['per_class_AP50'].get(name, float('nan')):.1f} | "
                f"{metrics['segm']['per_class_AP'].get(name, float('nan')):.1f} |"
            )
        lines += ["", "## Views", "", "![view confusion](view_confusion.png)", ""]
    turntable = card.get("turntable")
    if turntable:
        err = turntable["azimuth_error_deg"]
        lines += [
            "## Yaw on turntable photos (Carvana calibration set)",
            "",
            f"{turntable['posed']} of {turntable['images']} photos posed; azimuth error median "
            f"{err['median']:.1f} deg, mean {err['mean']:.1f} deg, p90 {err['p90']:.1f} deg; "
            f"{err['within_22_5']:.0%} within 22.5 deg; eight-way view accuracy {turntable['eight_way_accuracy']:.0%} "
            "(a half-step position accepts either neighbouring view).",
            "",
        ]
    notes = notes or str(card.get("notes", ""))
    if notes:
        lines += ["## Notes", "", notes.strip(), ""]
    out = model_dir / "report.md"
    out.write_text("\n".join(lines) + "\n")
    return out
