"""`carpose`: the runtime's commands, `serve` (the HTTP service), `predict` (poses of image files, no HTTP) and
`batch` (many photos on Ray, the optional `batch` extra); and, where the training code (`models/`) and the
`train` extra are installed, its training and evaluation commands (`models.cli`: train, eval, train-views,
turntable, report). A serving-only install, such as the serving images, has the first three.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import sys
from pathlib import Path

# What `carpose serve` runs, named as uvicorn imports them (the runtime never imports the HTTP edge itself).
APP = "service.api.main:app"
HTTP_PROTOCOL = "service.api.http_protocol:HeaderTimeoutH11Protocol"


def cmd_predict(args: argparse.Namespace) -> int:
    from .backends.detectron import DetectronBackend
    from .runtime import Runtime
    from .scoring import image_files, score
    from .settings import get_settings

    settings = get_settings()
    model_dir = Path(args.model_dir or settings.model_dir)
    backend = DetectronBackend.from_settings(settings, model_dir, args.device)
    runtime = Runtime.from_settings(backend, settings)
    failures = 0
    for path in image_files(args.images):
        # Absolute, as `carpose batch` writes them (its actors do not share our working folder).
        row = score(runtime, str(path.resolve()), path.read_bytes)
        failures += "error" in row
        print(json.dumps(row), flush=True)
    return 1 if failures else 0


def cmd_batch(args: argparse.Namespace) -> int:
    from .batch import run_batch  # Ray is the optional `batch` extra: imported only by this command

    return run_batch(args)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .sagemaker import find_model_dir

    if args.sagemaker:
        # Read by service.settings when uvicorn imports service.api.main below.
        os.environ["POSE_SAGEMAKER"] = "true"
        model_dir = find_model_dir(Path(args.model_root))
        if model_dir is not None:
            os.environ["POSE_MODEL_DIR"] = str(model_dir)
        print(f"SageMaker contract on; model directory: {os.environ.get('POSE_MODEL_DIR', 'the default')}")
    # SageMaker sets SAGEMAKER_BIND_TO_PORT for the containers of a serial inference pipeline.
    default_port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")) if args.sagemaker else 8000
    host = args.host or ("0.0.0.0" if args.sagemaker else "127.0.0.1")
    # The same drain time as the images' CMD (docker/Dockerfile): in-flight requests finish after SIGTERM.
    # The HTTP protocol with a header-read timeout and JSON protocol errors (service/api/http_protocol.py).
    uvicorn.run(APP, host=host, port=args.port or default_port, timeout_graceful_shutdown=20, http=HTTP_PROTOCOL)
    return 0


def add_runtime_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`predict`, `batch` and `serve`: what every install of carpose runs."""
    pr = sub.add_parser("predict", help="pose of each image, one JSON line each")
    pr.add_argument("images", nargs="+", help="image files or directories")
    pr.add_argument("--model-dir")
    pr.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    pr.set_defaults(func=cmd_predict)

    bt = sub.add_parser("batch", help="score a folder, manifest or s3:// prefix on Ray (the `batch` extra)")
    bt.add_argument("source", help="a folder, a manifest file (one path or s3:// URI a line) or an s3:// prefix")
    bt.add_argument("--output", required=True, help="results.jsonl (JSON lines) or results.parquet")
    bt.add_argument("--model-dir", help="default POSE_MODEL_DIR; on a cluster, a path every node has")
    bt.add_argument("--address", help="an existing Ray cluster (auto, ray://HOST:10001); default a local Ray")
    bt.add_argument("--gpus", type=int, default=0, help="one actor per GPU, this many (default: CPU actors)")
    bt.add_argument("--actors", type=int, help="CPU actors (default: one per CPU of the Ray cluster)")
    bt.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all cores)")
    bt.add_argument("--s3-endpoint-url", help="an S3-compatible endpoint (MinIO, ...); default AWS's")
    bt.add_argument("--quiet", action="store_true", help="no progress bar")
    bt.set_defaults(func=cmd_batch)

    sv = sub.add_parser("serve", help="run the HTTP service (the images' `serve` entrypoint: --sagemaker)")
    sv.add_argument("--sagemaker", action="store_true", help="add GET /ping and POST /invocations; port 8080")
    sv.add_argument("--host", help="bind address (default 127.0.0.1; 0.0.0.0 with --sagemaker)")
    sv.add_argument("--port", type=int, help="default 8000; 8080 (or SAGEMAKER_BIND_TO_PORT) with --sagemaker")
    sv.add_argument(
        "--model-root", default="/opt/ml/model", help="with --sagemaker: serve the model unpacked here, if any"
    )
    sv.set_defaults(func=cmd_serve)


# What the training commands need beyond the runtime: their code and the `train` extra (matplotlib, which the
# serving images never install). The images' /app/models holds the default model directory only, so `models` is
# importable there as a namespace package: the check is on `models.cli` itself.
TRAINING_MODULES = ("models.cli", "matplotlib")


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # its parent package is missing (ModuleNotFoundError) or refuses to import
        return False


def training_installed() -> bool:
    return all(_importable(name) for name in TRAINING_MODULES)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carpose", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    add_runtime_commands(sub)
    if training_installed():
        from models.cli import add_training_commands

        add_training_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse and run a `carpose` command line."""
    from .console import quiet_library_warnings, set_quiet

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet_library_warnings()
    args = build_parser().parse_args(argv)
    set_quiet(bool(vars(args).get("quiet", False)))  # the commands with a progress bar take --quiet
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
