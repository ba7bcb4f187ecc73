"""`models/<name>/report.md` with PNG plots, so a person sees at a glance what a model can and cannot do."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers or CI
import matplotlib.pyplot as plt
import numpy as np

from .evaluation import VIEW_AXIS, confusion_matrix
from .view_metrics import ece_interval_text, format_confusion
from .yaw_metrics import signed_error

HISTORY_FILE = "train_history.json"
YAW_SCATTER_FILE = "yaw_scatter.png"
YAW_HISTOGRAM_FILE = "yaw_error_histogram.png"
LOSS_KEYS = ("total_loss", "loss_cls", "loss_box_reg", "loss_mask", "loss_rpn_cls", "loss_rpn_loc")

# name -> (metric key, goal); a goal of None marks a row shown for context, not a target of the issue.
TARGETS: dict[str, tuple[str, float | None]] = {
    "mask AP": ("segm.AP", 40.0),
    "wheel box AP50": ("wheel_box_AP50", 90.0),
    # Against views derived from the annotated parts by the rule: context since the views are learned from labels.
    "view agreement with the rule on annotated parts, eight views": ("view_agreement.eight_way", None),
    "view agreement with the rule on annotated parts, at most one bin off": (
        "view_agreement.eight_way_within_one_bin",
        None,
    ),
    "view agreement with the rule on annotated parts, front/back/side": ("view_agreement.coarse", None),
}
# Targets of the learned views (issue 9), on held-out photos labelled by eye and on the turntable photos.
VIEW_TARGETS: dict[str, tuple[str, float, bool]] = {  # name -> (key, goal, higher is better)
    "eight-way agreement (held-out)": ("eight_way", 0.90, True),
    "front/back/side agreement (held-out)": ("coarse", 0.98, True),
    "expected calibration error (held-out)": ("ece", 0.05, False),
}


def target_table(
    targets: dict[str, tuple[str, float, bool]],
    figures: dict[str, Any],
    shown: Callable[[float, float, bool], tuple[str, str]],
) -> list[str]:
    """Markdown rows `| target | goal | reached | met |`: each (figure key, goal, higher is better) against
    `figures`; `shown(value, goal, higher)` gives the reached value's and the goal's text."""
    lines = ["| target | goal | reached | met |", "|---|---|---|---|"]
    for name, (key, goal, higher) in targets.items():
        value = float(figures[key])
        met = value >= goal if higher else value <= goal
        value_text, goal_text = shown(value, goal, higher)
        lines.append(f"| {name} | {'>=' if higher else '<='} {goal_text} | {value_text} | {'yes' if met else 'no'} |")
    return lines


def _view_figure(value: float, goal: float, higher: bool) -> tuple[str, str]:
    return (f"{value:.1%}" if higher else f"{value:.3f}"), f"{goal:g}"


def _yaw_figure(value: float, goal: float, higher: bool) -> tuple[str, str]:
    shown = f"{value:.1%}" if goal < 1 and higher else f"{value:.3f}" if goal < 1 else f"{value:.1f}"
    return shown, (f"{goal:.0%}" if goal < 1 and higher else f"{goal:g}")


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


def plot_count_matrix(
    matrix: np.ndarray, rows: Sequence[str], columns: Sequence[str], labels: tuple[str, str], title: str, out: Path
) -> None:
    """A confusion matrix as a heat map with its counts; `labels` = (x label, y label)."""
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(columns)), list(columns), rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), list(rows), fontsize=8)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            colour = "white" if count > matrix.max() / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8, color=colour)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_confusion(metrics: dict[str, Any], out: Path) -> None:
    matrix = confusion_matrix(metrics["view_agreement"]["confusion"])
    labels = ("view from the model's detections", "view from the ground-truth parts")
    plot_count_matrix(matrix, VIEW_AXIS, VIEW_AXIS, labels, "View confusion (test split)", out)


def plot_label_confusion(report: dict[str, Any], out: Path, title: str) -> None:
    confusion = report["confusion"]
    matrix = np.array(confusion["counts"])
    labels = ("view answered", "view labelled by eye")
    plot_count_matrix(matrix, confusion["rows_labelled"], confusion["columns_predicted"], labels, title, out)


def plot_reliability(report: dict[str, Any], out: Path) -> None:
    rows = [r for r in report["reliability"] if r["count"]]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.5, 6), height_ratios=(3, 1), sharex=True)
    centres = [r["mean_confidence"] for r in rows]
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    top.plot(centres, [r["accuracy"] for r in rows], marker="o", label="share right")
    top.set_ylabel("share of views right")
    top.set_title(f"Reliability (held-out), ECE {report['ece']:.3f}")
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    bottom.bar(centres, [r["count"] for r in rows], width=0.05)
    bottom.set_yscale("log")
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("photos")
    bottom.set_xlim(0, 1)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def view_classifier_section(card: dict[str, Any], model_dir: Path) -> list[str]:
    entry = card.get("view_classifier")
    if not entry or not ("cross_validated" in entry or "held_out" in entry):
        return []
    # `train-views` cross-validates a head on frozen features; `train-views --tune-from` holds one fold out.
    folds = "folds" in entry.get("cross_validated", {})
    held_out = entry["cross_validated"] if folds else entry["held_out"]
    how = (
        f"{held_out['folds']}-fold cross-validation, each photo answered by a head that never saw it, with a "
        "temperature fitted on the other folds"
        if folds
        else f"one stratified fold of {held_out['photos']} photos held out of training, on which the temperature "
        "was fitted (so its calibration figure is not independent of it)"
    )
    plot_label_confusion(held_out, model_dir / "view_label_confusion.png", "Held-out views vs labels by eye")
    plot_reliability(held_out, model_dir / "view_reliability.png")
    floor = held_out["precision_97"]
    lines = [
        "## Learned views",
        "",
        f"{entry['what']}. Trained on {entry['training_data']}; {entry['pretrained']}. Figures are held-out: "
        f"{how}. The crop comes from this directory's detector, which did see these "
        "photos in training; it only supplies the car box (car box AP50 on the unseen test split is in the table "
        "above).",
        "",
    ]
    lines += target_table(VIEW_TARGETS, held_out, _view_figure)
    lines += [
        "",
        f"Strict eight-way agreement (acceptable neighbours not counted): {held_out['eight_way_strict']:.1%} of "
        f"{held_out['photos']} photos.",
    ]
    if floor["threshold"] is not None:
        lines.append(
            f"With `min_confidence={floor['threshold']}` the eight-way view is right {floor['accuracy']:.1%} of the "
            f"time (target {floor['target']:.0%}) and {floor['share']:.1%} of the photos clear it."
        )
    unseen = entry.get("unseen_evaluation")
    if unseen:
        unseen_floor = unseen["precision_97"]
        lines += [
            "",
            f"Unseen photos: on {unseen['photos']} photos nothing trained on (`{unseen['labels']}`, the Car Parts "
            "test split labelled by eye; `carpose eval --views`, the full served pipeline): "
            f"eight-way {unseen['eight_way']:.1%} "
            f"(strict {unseen['eight_way_strict']:.1%}), front/back/side {unseen['coarse']:.1%}, ECE "
            f"{unseen['ece']:.3f}{ece_interval_text(unseen)}; confidence >= {unseen_floor['threshold']} is right "
            f"{unseen_floor['accuracy']:.1%} "
            f"of the time on {unseen_floor['share']:.1%} of them.",
            "",
            "```",
            format_confusion(unseen["confusion"]),
            "```",
        ]
    lines += [
        "",
        "![held-out confusion](view_label_confusion.png) ![reliability](view_reliability.png)",
        "",
        f"{'Cross-validated' if folds else 'Held out'}, {held_out['photos']} training photos (the plots above):",
        "",
        "```",
        format_confusion(held_out["confusion"]),
        "```",
        "",
    ]
    return lines


def plot_yaw(rows: list[dict[str, Any]], out_dir: Path, title: str) -> tuple[Path, Path]:
    """Answered vs measured yaw (scatter) and the histogram of the signed error, into `out_dir`."""
    posed = [r for r in rows if r["azimuth"] is not None]
    truth = np.array([r["truth"] for r in posed])
    answered = np.array([r["azimuth"] for r in posed])
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.scatter(truth, answered, s=9, alpha=0.6)
    ax.plot([0, 360], [0, 360], color="grey", lw=0.8)
    for edge in np.arange(22.5, 360, 45):
        ax.axhline(edge, color="lightgrey", lw=0.5)
        ax.axvline(edge, color="lightgrey", lw=0.5)
    ax.set_xlim(0, 360)
    ax.set_ylim(0, 360)
    ax.set_xticks(range(0, 361, 45))
    ax.set_yticks(range(0, 361, 45))
    ax.set_xlabel("measured yaw (deg)")
    ax.set_ylabel("answered azimuth_deg")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    scatter = out_dir / YAW_SCATTER_FILE
    fig.savefig(scatter, dpi=100)
    plt.close(fig)

    errors = np.array([signed_error(a, t) for a, t in zip(answered, truth, strict=True)])
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(errors, bins=list(range(-180, 181, 5)))
    for edge in (-30, 30):
        ax.axvline(edge, color="grey", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xlabel("answered - measured yaw (deg)")
    ax.set_ylabel("photos")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    histogram = out_dir / YAW_HISTOGRAM_FILE
    fig.savefig(histogram, dpi=100)
    plt.close(fig)
    return scatter, histogram


# Targets of the yaw on web photos (issue 19), on the stanford-cars-3d development set.
YAW_TARGETS: dict[str, tuple[str, float, bool]] = {  # name -> (key, goal, higher is better)
    "within 30 deg of the measured yaw": ("within_30", 0.95, True),
    "median absolute yaw error (deg)": ("median_error", 5.0, False),
    "eight-way vs the measured yaw's bin": ("eight_way", 0.85, True),
    "expected calibration error of `confidence`": ("ece", 0.05, False),
}


def yaw_section(card: dict[str, Any], model_dir: Path) -> list[str]:
    """`carpose eval --yaw --write`'s figures (aggregates only: the set is evaluation-only) and its two plots."""
    yaw = card.get("yaw_evaluation")
    if not yaw:
        return []
    lines = [
        f"## Yaw on web photos ({yaw['set']}, {yaw['photos']} photos, evaluation only)",
        "",
        "`carpose eval --yaw` through the served path (`Runtime.predict` on each photo's bytes) against a yaw "
        "measured by fitting a CAD model of the exact car model to each photo.",
        "",
    ]
    lines += target_table(YAW_TARGETS, yaw, _yaw_figure)
    failures = ", ".join(f"{kind} {share:.1%}" for kind, share in yaw["failures"].items())
    lines += [
        "",
        f"Within 15 deg {yaw['within_15']:.1%}; mean absolute error {yaw['mean_error']:.1f} deg, p75 "
        f"{yaw['p75_error']:.1f}, median inside the 30 deg band {yaw['median_error_within_30']:.1f}; signed bias "
        f"{yaw['bias']:+.1f} deg; mean confidence {yaw['mean_confidence']:.3f}, ECE {yaw['ece']:.3f}"
        f"{ece_interval_text(yaw)}. "
        f"Beyond 30 deg: {failures}.",
        "",
        "| true view | photos | within 30 deg | median error | eight-way |",
        "|---|---|---|---|---|",
    ]
    for view, row in yaw["by_true_view"].items():
        lines.append(
            f"| {view} | {row['photos']} | {row['within_30']:.1%} | {row['median_error']:.1f} | "
            f"{row['eight_way']:.1%} |"
        )
    plots = [name for name in (YAW_SCATTER_FILE, YAW_HISTOGRAM_FILE) if (model_dir / name).is_file()]
    if plots:
        lines += ["", " ".join(f"![{name[:-4].replace('_', ' ')}]({name})" for name in plots)]
    return [*lines, ""]


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
    lines += view_classifier_section(card, model_dir)
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
            "| target | goal | reached | met |",
            "|---|---|---|---|",
            f"| eight-way view | >= 95% | {turntable['eight_way_accuracy']:.1%} | "
            f"{'yes' if turntable['eight_way_accuracy'] >= 0.95 else 'no'} |",
            f"| median yaw error | <= 6 deg | {err['median']:.1f} deg | {'yes' if err['median'] <= 6.0 else 'no'} |",
        ]
        if "one_car_share" in turntable:
            share = turntable["one_car_share"]
            lines.append(f"| `cars_detected == 1` | >= 98% | {share:.1%} | {'yes' if share >= 0.98 else 'no'} |")
        lines.append("")
    lines += yaw_section(card, model_dir)
    notes = notes or str(card.get("notes", ""))
    if notes:
        lines += ["## Notes", "", notes.strip(), ""]
    out = model_dir / "report.md"
    out.write_text("\n".join(lines) + "\n")
    return out
