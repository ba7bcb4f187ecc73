"""`carpose batch`: pose every photo of a folder, a manifest or an s3:// prefix with Ray Data, one
model-holding actor per CPU (or per GPU with --gpus), into JSON lines or Parquet, one row per photo.

Ray is the optional `batch` extra, so it is imported inside the functions that need it: the serving images
never import it. Each row is what `carpose predict` prints (`service.scoring`): the JSON of POST /pose under the
photo's name, or the error object the API would answer; a bad photo gets its error row and the batch goes on.
Only the photos' names travel through Ray; each actor reads its photos itself (local file or S3), so the
object store holds names and rows, never images.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .scoring import S3_SCHEME, Row, error_row, is_image_name, manifest_sources, score, split_s3_uri
from .settings import Settings, get_settings

log = logging.getLogger("service.batch")

# A local Ray's shared-memory object store: only names and JSON rows pass through it (see the docstring), and
# Ray's own default (30% of the RAM) would take memory a busy host needs for the models.
LOCAL_OBJECT_STORE_BYTES = 200_000_000
# Photos per actor call: the CPU gains nothing from batching (docs/gpu.md), and one photo a call lets rows (and
# the progress bar) move as each photo is done.
PHOTOS_PER_CALL = 1


def s3_client(endpoint_url: str | None) -> Any:
    """boto3's standard chain for credentials and region; `endpoint_url` for MinIO and other S3 stand-ins
    (None keeps boto3's own, which also honours AWS_ENDPOINT_URL_S3)."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url)


def list_sources(source: str, endpoint_url: str | None = None) -> list[str]:
    """SOURCE -> the photos to score: an s3:// prefix (its image objects), a folder (its image files, in name
    order) or a manifest file (one path or s3:// URI a line, taken whatever its name)."""
    if source.startswith(S3_SCHEME):
        bucket, prefix = split_s3_uri(source)
        pages = s3_client(endpoint_url).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        return [f"{S3_SCHEME}{bucket}/{key}" for key in keys if is_image_name(key)]
    path = Path(source).resolve()  # the actors' working folder is not ours
    if path.is_dir():
        return [str(p) for p in sorted(path.rglob("*")) if p.is_file() and is_image_name(p.name)]
    return manifest_sources(path)


def read_source(source: str, s3: Any) -> bytes:
    """The bytes of a local file or an S3 object; a missing or forbidden one is an OSError (an `unreadable` row)."""
    if not source.startswith(S3_SCHEME):
        return Path(source).read_bytes()
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = split_s3_uri(source)
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        raise OSError(f"{source}: {exc.response.get('Error', {}).get('Code', 'error')}") from exc
    except BotoCoreError as exc:
        raise OSError(f"{source}: {exc}") from exc
    return body


class PoseScorer:
    """A Ray Data actor: loads the model once, then scores batches of photo names into JSON rows."""

    def __init__(self, settings: Settings, model_dir: str, device: str, endpoint_url: str | None) -> None:
        from .backends.detectron import DetectronBackend
        from .runtime import Runtime

        if settings.torch_threads > 0:
            import torch

            torch.set_num_threads(settings.torch_threads)
        backend = DetectronBackend.from_settings(settings, Path(model_dir), device)
        self.runtime = Runtime.from_settings(backend, settings)
        self.s3 = s3_client(endpoint_url)

    def score_one(self, source: str) -> Row:
        try:
            return score(self.runtime, source, partial(read_source, source, self.s3))
        except Exception as exc:  # a bug of ours: that photo's row says so (as the API's 500), the batch goes on
            log.exception("scoring %s failed", source)
            return error_row(source, "internal_error", f"{type(exc).__name__}: {exc}")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # Rows travel as JSON text: error rows and pose rows have different shapes, which Arrow blocks cannot mix.
        rows = [json.dumps(self.score_one(str(source))) for source in batch["file"]]
        return {"row": np.array(rows, dtype=object)}


def score_with_ray(
    sources: list[str], settings: Settings, model_dir: str, gpus: int, actors: int | None, endpoint_url: str | None
) -> Iterator[Row]:
    """Rows as the actors finish them (not in source order: each row names its photo). Ray must be running."""
    import ray

    if not sources:
        return
    if gpus > 0:  # one GPU each, and a CPU for the decoding and the pose around the model call
        pool, num_cpus, num_gpus, device = gpus, 1.0, 1.0, "cuda"
    else:
        pool, num_cpus, num_gpus, device = actors or int(ray.cluster_resources().get("CPU", 1)), 1.0, 0.0, "cpu"
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ours counts photos (run_batch); Ray's would print beside it
    dataset = ray.data.from_items([{"file": source} for source in sources]).map_batches(
        PoseScorer,
        fn_constructor_kwargs={
            "settings": settings,
            "model_dir": model_dir,
            "device": device,
            "endpoint_url": endpoint_url,
        },
        batch_size=PHOTOS_PER_CALL,
        compute=ray.data.ActorPoolStrategy(size=min(pool, len(sources))),
        num_cpus=num_cpus,
        num_gpus=num_gpus,
    )
    for record in dataset.iter_rows():
        yield json.loads(record["row"])


class JsonLinesWriter:
    def __init__(self, path: Path) -> None:
        self.file = path.open("w")

    def write(self, row: Row) -> None:
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()  # a long batch's rows are readable (and survive a crash) as they come

    def close(self) -> None:
        self.file.close()


class ParquetWriter:
    """Parquet needs one schema for the whole file, and error rows lack the pose columns: the rows are held
    and written at the end, their schema unified by Arrow (absent fields are nulls)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[Row] = []

    def write(self, row: Row) -> None:
        self.rows.append(row)

    def close(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        # pa.array infers one struct type from every row (from_pylist would take the first row's keys only).
        table = pa.Table.from_struct_array(pa.array(self.rows)) if self.rows else pa.table({})
        columns = list(dict.fromkeys(key for row in self.rows for key in row))  # `file` first, as in JSON lines
        pq.write_table(table.select(columns), self.path)


def open_writer(path: Path) -> JsonLinesWriter | ParquetWriter:
    return ParquetWriter(path) if path.suffix.lower() == ".parquet" else JsonLinesWriter(path)


def run_batch(args: argparse.Namespace) -> int:
    """`carpose batch`. Starts a local Ray unless Ray is already running or --address names a cluster; stops
    what it started. Exit 0 once every photo has a row (error rows included), 2 when SOURCE lists nothing."""
    import ray

    from .console import progress

    settings = get_settings()
    model_dir = str(Path(args.model_dir or settings.model_dir).resolve())
    sources = list_sources(args.source, args.s3_endpoint_url)
    if not sources:
        print(f"carpose batch: no photos in {args.source}", file=sys.stderr)
        return 2
    started = not ray.is_initialized()
    if started and args.address:
        ray.init(address=args.address)
    elif started:
        ray.init(num_cpus=args.num_cpus, object_store_memory=LOCAL_OBJECT_STORE_BYTES, include_dashboard=False)
    errors = 0
    writer = open_writer(Path(args.output))
    try:
        rows = score_with_ray(sources, settings, model_dir, args.gpus, args.actors, args.s3_endpoint_url)
        for row in progress(rows, total=len(sources), desc="carpose batch", unit="photo"):
            writer.write(row)
            errors += "error" in row
    finally:
        writer.close()
        if started:
            ray.shutdown()
    print(f"carpose batch: {len(sources)} photos, {errors} error rows -> {args.output}", file=sys.stderr)
    return 0
