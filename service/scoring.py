"""Image sources (files, folders, manifests, s3:// URIs) -> one output row each, for `carpose predict` and
`carpose batch`: the JSON of POST /pose (without `rendered_image`: nothing is rendered) under the source's name,
or the error object the API would answer for those bytes.

No Ray here (it is an optional extra): `service.batch` runs these functions inside its actors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .exceptions import PoseError
from .response import to_response
from .runtime import Runtime

# What a folder or an S3 prefix contributes; a manifest's lines are scored whatever their names.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".avif"}
# A source that could not be read (missing file or S3 object, no permission). The API has no such code: an
# upload always has bytes. Bytes that are not a usable image get the API's own codes (invalid_image, ...).
UNREADABLE = "unreadable"
S3_SCHEME = "s3://"

Row = dict[str, Any]


def is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def image_files(paths: list[str]) -> Iterator[Path]:
    """`carpose predict`'s arguments: files as given, folders as their image files in name order."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.iterdir() if is_image_name(p.name))
        else:
            yield path


def manifest_sources(manifest: Path) -> list[str]:
    """One path or s3:// URI a line; blank lines and `#` comments skipped; relative paths are relative to the
    manifest's folder, so a manifest and its photos can move together."""
    sources = []
    folder = manifest.resolve().parent
    for line in manifest.read_text().splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if entry.startswith(S3_SCHEME) or Path(entry).is_absolute():
            sources.append(entry)
        else:
            sources.append(str(folder / entry))
    return sources


def split_s3_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/key/prefix -> (bucket, key/prefix)."""
    bucket, _, key = uri[len(S3_SCHEME) :].partition("/")
    return bucket, key


def score(runtime: Runtime, source: str, read: Callable[[], bytes]) -> Row:
    """The row of one source: `read()` its bytes, pose them, convert them as POST /pose does."""
    try:
        data = read()
    except OSError as exc:
        return error_row(source, UNREADABLE, str(exc))
    try:
        result = runtime.predict(data)
    except PoseError as exc:
        return error_row(source, exc.code, exc.message)
    response = to_response(result.pose, result.image, runtime.backend, result.timings_ms, None, result.quality)
    return {"file": source, **response.model_dump(mode="json", exclude={"rendered_image"})}


def error_row(source: str, code: str, message: str) -> Row:
    return {"file": source, "error": {"code": code, "message": message}}
