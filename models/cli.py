"""`carpose`'s training and evaluation commands: train, evaluate and report on car-parts models.

`carpose` itself is `service.cli:main`; it registers these (`add_training_commands`) where this package and the
`train` extra are installed, beside the runtime's own `predict`, `batch` and `serve`:

carpose train   --recipe RECIPE|FILE.yaml [--weights W] [--dataset DIR] [--output-dir MODEL_DIR] [KEY VALUE ...]
carpose eval    [--model-dir DIR] [--dataset DIR] [--split test] [--write]
carpose predict [--model-dir DIR] IMAGE_OR_DIR ...     (one JSON line per image, the JSON of POST /pose)
carpose turntable [--model-dir DIR] [--turntable DIR] [--write]   (azimuth error on photos of known yaw)
carpose report  [--model-dir DIR]
carpose train-views [--model-dir DIR] [--views FILE.tsv] [--images DIR]   (learned view classifier, cross-validated)
carpose eval --views FILE.tsv [--images DIR]   (served views against views labelled by eye)
carpose train-roll [--model-dir DIR] [--images DIR]   (camera-roll head, self-supervised by rotation)
carpose eval-roll --images DIR [--labels TSV --column inplane_deg] [--rolls -15,0,15]   (served roll_deg)
carpose eval --yaw LABELS.tsv --images DIR [--write]   (served azimuth_deg against a measured continuous yaw)
carpose batch   SOURCE --output results.jsonl|.parquet [--address ADDR] [--gpus N]   (Ray; the `batch` extra)
carpose serve   [--sagemaker] [--host HOST] [--port PORT]   (the HTTP service; --sagemaker: /ping, /invocations)
carpose data    [NAME ...] [--from DIR [--link]] [--mirror URL_OR_PATH] [--check]   (datasets into $CARPOSE_DATA_ROOT)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from service.engines import AUTO, ENGINE_CHOICES
from service.margin import FrameMargin
from service.settings import DEFAULT_FRAME_MARGIN

from .paths import (
    DATA_ROOT_VARIABLE,
    DATASETS_DIR,
    DEFAULT_DATASET_DIR,
    DEFAULT_TURNTABLE_DIR,
    DEFAULT_VIEWS_FILE,
    REPO_ROOT,
)

DEFAULT_VIEW_IMAGES = DEFAULT_DATASET_DIR / "trainingset" / "JPEGImages"


def _default_model_dir() -> Path:
    from service.settings import get_settings

    return get_settings().model_dir


def cmd_train(args: argparse.Namespace) -> int:
    from .config import RECIPES, load_cfg
    from .data import class_names
    from .export import export_model_dir, load_checkpoint_state
    from .report import HISTORY_FILE, condense_history, write_report
    from .training import train

    recipe = RECIPES.get(args.recipe, Path(args.recipe))
    cfg = load_cfg(recipe, args.opts)
    cfg.CARPOSE.DATASET_DIR = str(Path(args.dataset).resolve())
    if args.weights is not None:
        cfg.MODEL.WEIGHTS = args.weights
    if args.max_iter is not None:
        cfg.SOLVER.MAX_ITER = args.max_iter
        cfg.SOLVER.STEPS = tuple(s for s in cfg.SOLVER.STEPS if s < args.max_iter)
    if args.device is not None:
        cfg.MODEL.DEVICE = args.device
    cfg.OUTPUT_DIR = str(Path(args.run_dir or REPO_ROOT / "runs" / cfg.CARPOSE.MODEL_NAME).resolve())
    cfg.freeze()
    final = train(cfg, resume=not args.no_resume, threads=args.threads)

    output_dir = Path(args.output_dir or REPO_ROOT / "models" / cfg.CARPOSE.MODEL_NAME)
    classes = class_names(cfg.CARPOSE.WITH_CAR_CLASS)
    card = {
        "recipe": str(args.recipe),
        "training_data": f"Car Parts Segmentation V2, train split ({cfg.CARPOSE.DATASET_DIR})",
        "solver": {
            "ims_per_batch": cfg.SOLVER.IMS_PER_BATCH,
            "base_lr": cfg.SOLVER.BASE_LR,
            "max_iter": cfg.SOLVER.MAX_ITER,
            "steps": list(cfg.SOLVER.STEPS),
        },
        "input": {"min_size_train": list(cfg.INPUT.MIN_SIZE_TRAIN), "min_size_test": cfg.INPUT.MIN_SIZE_TEST},
        **({"initial_weights": str(args.weights)} if args.weights else {}),
        **({"tight_crop": float(cfg.CARPOSE.TIGHT_CROP)} if cfg.CARPOSE.TIGHT_CROP > 0 else {}),
    }
    export_model_dir(cfg, load_checkpoint_state(final), output_dir, classes, card=card)
    metrics_json = Path(cfg.OUTPUT_DIR) / "metrics.json"
    if metrics_json.is_file():
        (output_dir / HISTORY_FILE).write_text(json.dumps(condense_history(metrics_json)) + "\n")
    if args.skip_eval:
        write_report(output_dir)
    else:
        _evaluate_into_card(output_dir, Path(args.dataset), "test", args.device or "auto")
    print(f"model directory: {output_dir}")
    return 0


def _store_in_card(model_dir: Path, keys: tuple[str, ...], value: object) -> None:
    """Set `value` at `keys` in the model directory's model.json, then rewrite report.md from it."""
    from .report import write_report

    card_path = model_dir / "model.json"
    card = json.loads(card_path.read_text())
    entry = card
    for key in keys[:-1]:
        entry = entry[key]
    entry[keys[-1]] = value
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    write_report(model_dir)


def _evaluate_into_card(
    model_dir: Path, dataset: Path, split: str, device: str, limit: int | None = None, engine: str = AUTO
) -> dict:
    from .evaluation import evaluate

    metrics = evaluate(model_dir, dataset, split=split, device=device, limit=limit, engine=engine)
    _store_in_card(model_dir, ("metrics",), metrics)
    return metrics


def _print_view_report(title: str, report: dict | None) -> None:
    from .view_metrics import ece_interval_text, format_confusion

    if report is None:
        return
    print(f"\n{title}: {report['photos']} photos")
    print(
        f"eight-way {report['eight_way']:.1%} (strict {report['eight_way_strict']:.1%}), "
        f"front/back/side {report['coarse']:.1%}, ECE {report['ece']:.3f}{ece_interval_text(report)}"
    )
    print(format_confusion(report["confusion"]))
    print("reliability (confidence bin: photos, mean confidence, share right):")
    for row in report["reliability"]:
        if row["count"]:
            print(f"  {row['bin']}: {row['count']:4d}  {row['mean_confidence']:.3f}  {row['accuracy']:.3f}")
    floor = report["precision_97"]
    if floor["threshold"] is None:
        print(f"no confidence floor reaches {floor['target']:.0%} right")
    else:
        share = f"{floor['share']:.1%} of photos clear it"
        print(f"confidence >= {floor['threshold']}: {floor['accuracy']:.1%} right, {share}")


def served_margin(args: argparse.Namespace) -> FrameMargin:
    """`--frame-margin`: the served path as a service with that POSE_FRAME_MARGIN runs it. The model card holds the
    default's figures only, so `--write` is refused with another share."""
    if args.write and args.frame_margin != DEFAULT_FRAME_MARGIN:
        raise SystemExit(
            f"carpose: --write stores the default served path's figures (--frame-margin {DEFAULT_FRAME_MARGIN}); "
            "drop --write to measure another margin"
        )
    return FrameMargin(share=args.frame_margin)


def add_frame_margin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--frame-margin",
        type=float,
        default=DEFAULT_FRAME_MARGIN,
        metavar="SHARE",
        help="POSE_FRAME_MARGIN of the served path measured (default: the service's, %(default)s = off)",
    )


def cmd_eval_views(args: argparse.Namespace, model_dir: Path) -> int:
    from .view_eval import evaluate_views

    result = evaluate_views(
        model_dir, Path(args.views), Path(args.images), args.device, args.engine, served_margin(args)
    )
    if args.write and result["view_classifier"] and result["unseen"] is not None:
        unseen = {"labels": Path(args.views).name, **result["unseen"]}
        _store_in_card(model_dir, ("view_classifier", "unseen_evaluation"), unseen)
    if not result["view_classifier"]:
        print("this model directory has no view classifier: the views come from the part-layout rule alone")
    _print_view_report("photos the view classifier never trained on", result["unseen"])
    _print_view_report(
        "photos the view classifier TRAINED on (not held-out; its cross-validated figures are in model.json)",
        result["seen_by_view_classifier"],
    )
    print(f"\n{result['seconds_per_photo'] * 1000:.0f} ms per photo; misses:")
    for miss in result["misses"]:
        print(f"  {miss['file']}: labelled {miss['label']}, answered {miss['view']} ({miss['confidence']:.2f})")
    return 0


def cmd_eval_yaw(args: argparse.Namespace, model_dir: Path) -> int:
    from .view_metrics import ece_interval_text
    from .yaw_eval import evaluate_yaw

    images = Path(args.images) if args.images != str(DEFAULT_VIEW_IMAGES) else Path(args.yaw).parent
    result = evaluate_yaw(model_dir, Path(args.yaw), images, args.device, args.engine, served_margin(args))
    report = result["report"]
    set_name = Path(args.yaw).resolve().parent.name
    if args.rows:
        Path(args.rows).write_text("".join(json.dumps(row) + "\n" for row in result["rows"]))
    print(
        f"{set_name}: {report['photos']} photos ({result['missing_photos']} named but missing), "
        f"{report['answered']} with an azimuth; {result['seconds_per_photo'] * 1000:.0f} ms per photo"
    )
    print(
        f"within 15 deg {report['within_15']:.1%}, within 30 deg {report['within_30']:.1%}; absolute error median "
        f"{report['median_error']:.1f} deg, mean {report['mean_error']:.1f}, p75 {report['p75_error']:.1f}; "
        f"median inside 30 deg {report['median_error_within_30']:.1f}; signed bias {report['bias']:+.1f} deg "
        f"(median {report['median_signed_error']:+.1f})"
    )
    print(
        f"eight-way vs the true yaw's bin {report['eight_way']:.1%}; confidence mean {report['mean_confidence']:.3f}, "
        f"ECE {report['ece']:.3f}{ece_interval_text(report)}"
    )
    failures = ", ".join(f"{kind} {share:.1%}" for kind, share in report["failures"].items())
    print(f"beyond 30 deg: {failures}")
    print("by true view: photos, within 30 deg, median error, eight-way")
    for view, row in report["by_true_view"].items():
        print(
            f"  {view:12s} {row['photos']:4d}  {row['within_30']:6.1%}  {row['median_error']:5.1f}  "
            f"{row['eight_way']:6.1%}"
        )
    if args.write:
        from .report import plot_yaw, write_report

        plot_yaw(result["rows"], model_dir, f"{set_name} ({report['photos']} photos), served azimuth_deg")
        card_path = model_dir / "model.json"
        card = json.loads(card_path.read_text())
        # Aggregates only: the set's labels are evaluation-only and never stored.
        card["yaw_evaluation"] = {"set": set_name, **{k: v for k, v in report.items() if k != "reliability"}}
        card_path.write_text(json.dumps(card, indent=2) + "\n")
        write_report(model_dir)
    return 0


def cmd_train_views(args: argparse.Namespace) -> int:
    from .report import write_report
    from .view_training import train_view_classifier

    model_dir = Path(args.model_dir or _default_model_dir())
    if args.tune_from is not None:
        from .view_finetune import TuneRecipe, finetune_view_classifier

        recipe = TuneRecipe(tuned_from=args.tune_from)
        report = finetune_view_classifier(model_dir, Path(args.views), Path(args.images), args.device, recipe)
        _print_view_report("held-out fold (it fitted the temperature)", report)
    else:
        report = train_view_classifier(
            model_dir, Path(args.views), Path(args.images), device=args.device, box_source=args.boxes
        )
        _print_view_report("held-out (cross-validated) views", report)
    write_report(model_dir)
    return 0


def cmd_train_roll(args: argparse.Namespace) -> int:
    from .roll_training import train_roll

    model_dir = Path(args.model_dir or _default_model_dir())
    summary = train_roll(model_dir, Path(args.images))
    print("held-out (cross-validated) roll on rolled copies:", json.dumps(summary))
    return 0


def cmd_eval_roll(args: argparse.Namespace) -> int:
    from service.backends.detectron import DetectronBackend
    from service.quality import QualityThresholds

    from .roll_eval import DEFAULT_ROLLS, read_label_column, read_rolls, summarise_readings

    model_dir = Path(args.model_dir or _default_model_dir())
    images = Path(args.images)
    own = read_label_column(Path(args.labels), args.column) if args.labels else None
    photos = sorted(p for p in images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if own is not None:
        photos = [p for p in photos if p.name in own]
    rolls = [float(v) for v in args.rolls.split(",")] if args.rolls else list(DEFAULT_ROLLS)
    # The served hold_level threshold (POSE_QUALITY_MAX_ROLL_DEG's default) unless given.
    threshold = QualityThresholds.defaults().max_roll_deg if args.threshold is None else args.threshold
    readings = read_rolls(DetectronBackend(model_dir, device=args.device), photos, own, rolls)
    print(json.dumps(summarise_readings(readings, threshold), indent=2))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluation import evaluate

    model_dir = Path(args.model_dir or _default_model_dir())
    if args.views and args.yaw:
        raise SystemExit("carpose eval: give --views or --yaw, not both")
    if args.views:
        return cmd_eval_views(args, model_dir)
    if args.yaw:
        return cmd_eval_yaw(args, model_dir)
    if args.frame_margin != DEFAULT_FRAME_MARGIN:
        raise SystemExit("carpose eval: --frame-margin measures the served path: give --views or --yaw")
    if args.write:
        metrics = _evaluate_into_card(model_dir, Path(args.dataset), args.split, args.device, args.limit, args.engine)
    else:
        metrics = evaluate(model_dir, Path(args.dataset), args.split, args.device, args.limit, engine=args.engine)
    summary = {
        "split": metrics["split"],
        "images": metrics["images"],
        "bbox_AP": round(metrics["bbox"]["AP"], 2),
        "segm_AP": round(metrics["segm"]["AP"], 2),
        "wheel_box_AP50": round(metrics["wheel_box_AP50"], 2),
        # The part rule's view from the ANNOTATED parts against the view the served model gives: a check of the
        # rule, not the product's accuracy (that is `carpose eval --views`, against views labelled by eye).
        "part_rule_on_annotations_agrees_8way": round(metrics["view_agreement"]["eight_way"], 4),
        "part_rule_on_annotations_agrees_coarse": round(metrics["view_agreement"]["coarse"], 4),
        "latency_ms_p50": round(metrics["latency_ms"]["p50"], 1),
    }
    print(
        json.dumps(
            {
                "summary": summary,
                "per_class_box_AP": metrics["bbox"]["per_class_AP"],
                "per_class_mask_AP": metrics["segm"]["per_class_AP"],
            },
            indent=2,
        )
    )
    return 0


def cmd_turntable(args: argparse.Namespace) -> int:
    from .turntable import measure

    model_dir = Path(args.model_dir or _default_model_dir())
    result = measure(model_dir, Path(args.turntable), args.device, engine=args.engine, margin=served_margin(args))
    for row in result["rows"]:
        print(json.dumps(row))
    summary = {k: v for k, v in result.items() if k != "rows"}
    print(json.dumps(summary, indent=2))
    if args.write:
        _store_in_card(model_dir, ("turntable",), summary)
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from .datasets import DataError, check, get, load_manifest

    manifest = load_manifest()
    unknown = [n for n in args.names if n not in manifest]
    if unknown:
        print(f"carpose data: unknown datasets {unknown} (known: {sorted(manifest)})", file=sys.stderr)
        return 2
    if (args.from_dir or args.mirror) and len(args.names) != 1:
        print("carpose data: --from and --mirror take one dataset name", file=sys.stderr)
        return 2
    root = Path(args.root).resolve()
    failed = False
    for name in args.names or list(manifest):
        dataset = manifest[name]
        folder = root / name
        try:
            if args.check:
                problems = check(dataset, folder)
                if problems:
                    raise DataError("; ".join(problems))
                print(f"{name}: ok at {folder}")
                continue
            if not args.names and dataset.git is None and not folder.exists():
                # Asked for everything: one without a public source is a note, not a failure.
                print(f"{name}: not at {folder}; {dataset.terms}")
                continue
            from_dir = Path(args.from_dir) if args.from_dir else None
            get(dataset, root, from_dir=from_dir, link=args.link, mirror=args.mirror)
            print(f"{name}: ok at {folder} ({dataset.used_for}; terms: {dataset.terms})")
        except DataError as exc:
            failed = True
            print(f"{name}: {exc}", file=sys.stderr)
    print(f"data root: {root} (set {DATA_ROOT_VARIABLE} to read or write another)")
    return 1 if failed else 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    print(write_report(Path(args.model_dir or _default_model_dir())))
    return 0


def add_training_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """train, eval, train-views, train-roll, eval-roll, turntable, report and data, for `carpose` (service.cli)."""
    train = sub.add_parser("train", help="train a model and export a model directory")
    train.add_argument(
        "--recipe", default="cpu_mnv2_fpn", help="cpu_mnv2_fpn, cpu_mnv2_fpn_web, gpu_r50_fpn or a config file"
    )
    train.add_argument("--dataset", default=str(DEFAULT_DATASET_DIR), help="COCO car-parts dataset directory")
    train.add_argument("--output-dir", help="model directory to write (default models/<MODEL_NAME>)")
    train.add_argument("--run-dir", help="checkpoints and logs (default runs/<MODEL_NAME>)")
    train.add_argument("--weights", help="initial weights: path or URL (GPU recipe: COCO model-zoo weights)")
    train.add_argument("--max-iter", type=int, help="override SOLVER.MAX_ITER")
    train.add_argument("--device", choices=["cpu", "cuda"], help="override MODEL.DEVICE")
    train.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    train.add_argument("--no-resume", action="store_true", help="start over instead of resuming from checkpoints")
    train.add_argument("--skip-eval", action="store_true", help="export without evaluating on the test split")
    train.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="COCO AP per class and view agreement on a split")
    ev.add_argument("--model-dir")
    ev.add_argument("--dataset", default=str(DEFAULT_DATASET_DIR))
    ev.add_argument("--split", default="test", choices=["train", "test"])
    ev.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ev.add_argument("--engine", default=AUTO, choices=ENGINE_CHOICES, help="inference engine (POSE_ENGINE's values)")
    ev.add_argument("--limit", type=int, help="first N images only")
    ev.add_argument(
        "--write", action="store_true", help="store the metrics (with --views: the unseen photos') in model.json"
    )
    ev.add_argument("--views", help="TSV of views labelled by eye: evaluate the served views on those photos instead")
    ev.add_argument(
        "--yaw", help="TSV of measured yaws (file, yaw_deg, ...): evaluate the served azimuth_deg on those photos"
    )
    ev.add_argument(
        "--images",
        default=str(DEFAULT_VIEW_IMAGES),
        help="directory of the photos named in --views or --yaw (with --yaw, default: the TSV's directory)",
    )
    ev.add_argument("--rows", help="with --yaw: also write one JSON line per photo to this file (keep it out of git)")
    add_frame_margin(ev)
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(func=cmd_eval)

    tv = sub.add_parser("train-views", help="train the view classifier of a model directory on labelled photos")
    tv.add_argument("--model-dir")
    tv.add_argument("--views", default=str(DEFAULT_VIEWS_FILE), help="TSV: file name, view, acceptable alternates")
    tv.add_argument("--images", default=str(DEFAULT_VIEW_IMAGES), help="directory of the photos named in --views")
    tv.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    tv.add_argument(
        "--boxes",
        default="detector",
        choices=["detector", "annotations"],
        help="crop around the detector's main car (what the service sees) or the annotated car (no detector pass)",
    )
    tv.add_argument(
        "--tune-from",
        type=int,
        metavar="BLOCK",
        help="also fine-tune the trunk's blocks from BLOCK on (0-18; the shipped model: 10) on web-framed crops of "
        "the served decode; --boxes is then the detector's",
    )
    tv.add_argument("--quiet", action="store_true", help="no progress bar")
    tv.set_defaults(func=cmd_train_views)

    tr = sub.add_parser(
        "train-roll", help="train the camera-roll head of a model directory (needs its view classifier)"
    )
    tr.add_argument("--model-dir")
    tr.add_argument(
        "--images", default=str(DEFAULT_VIEW_IMAGES), help="near-level photos with annotations.json beside the folder"
    )
    tr.set_defaults(func=cmd_train_roll)

    er = sub.add_parser("eval-roll", help="served roll_deg on photos and copies rolled by known angles")
    er.add_argument("--model-dir")
    er.add_argument("--images", required=True, help="directory of photos (level unless --labels gives their roll)")
    er.add_argument("--labels", help="TSV with a header row naming `file` and the --column")
    er.add_argument("--column", default="inplane_deg", help="the photos' own roll in the labels file, degrees")
    er.add_argument("--rolls", help="applied rolls, degrees, comma-separated (default -15,-8,-4,0,4,8,15)")
    er.add_argument(
        "--threshold", type=float, help="hold_level threshold to count false flags at (default: the service's, 8)"
    )
    er.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    er.set_defaults(func=cmd_eval_roll)

    tt = sub.add_parser("turntable", help="azimuth error on turntable photos of known yaw")
    tt.add_argument("--turntable", default=str(DEFAULT_TURNTABLE_DIR), help="directory of <car>_<NN>.jpg photos")
    tt.add_argument("--model-dir")
    tt.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    tt.add_argument("--engine", default=AUTO, choices=ENGINE_CHOICES, help="inference engine (POSE_ENGINE's values)")
    tt.add_argument("--write", action="store_true", help="store the summary in model.json and rewrite report.md")
    add_frame_margin(tt)
    tt.add_argument("--quiet", action="store_true", help="no progress bar")
    tt.set_defaults(func=cmd_turntable)

    rp = sub.add_parser("report", help="rewrite report.md and its plots from model.json")
    rp.add_argument("--model-dir")
    rp.set_defaults(func=cmd_report)

    dt = sub.add_parser("data", help="fetch and check the datasets (models/datasets.json) under the data root")
    dt.add_argument("names", nargs="*", help="car-parts, car-parts-views, carvana-turntable (default: all)")
    dt.add_argument("--root", default=str(DATASETS_DIR), help=f"default ${DATA_ROOT_VARIABLE} or %(default)s")
    dt.add_argument("--from", dest="from_dir", help="copy the dataset from this folder instead of fetching it")
    dt.add_argument("--link", action="store_true", help="with --from: a symbolic link instead of a copy")
    dt.add_argument("--mirror", help="fetch the pinned commit from this git URL or local clone instead of GitHub")
    dt.add_argument("--check", action="store_true", help="only check what is there")
    dt.add_argument("--quiet", action="store_true", help="no progress bar")
    dt.set_defaults(func=cmd_data)


if __name__ == "__main__":  # `python -m models.cli ...`: the same `carpose`
    from service.cli import main

    sys.exit(main())
