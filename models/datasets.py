"""`carpose data`: put a dataset of models/datasets.json under the data root at its pinned commit, and check it.

Three ways in, for three kinds of machine:
- a git source (GitHub, or `--mirror URL_OR_PATH`: a local clone or bare mirror of the same repository): the
  pinned commit is fetched into a temporary repository and only the manifest's `include` paths are written out;
- `--from DIR`: a copy someone already has (a USB disk, another checkout's data root), copied in (or linked with
  `--link`);
- nothing to fetch (the view labels have no public source): the command says where to get them.
Every way ends with the same check (file counts, every COCO image present, TSV row counts) and names the folder.
"""

from __future__ import annotations

import fnmatch
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = Path(__file__).resolve().parent / "datasets.json"
SOURCE_STAMP = "SOURCE.json"  # written into a fetched dataset: where it came from, which commit


class DataError(Exception):
    """A dataset that could not be fetched or failed its check; the message says what to do."""


@dataclass(frozen=True)
class GitSource:
    url: str
    commit: str
    include: tuple[str, ...]
    flatten: bool = False  # write files by name only (the turntable photos sit in two folders upstream)


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str
    used_for: str
    terms: str
    size: str
    git: GitSource | None
    expect: dict[str, int]
    coco: tuple[str, ...] = ()
    tsv_rows: dict[str, int] = field(default_factory=dict)


def load_manifest(path: Path = MANIFEST) -> dict[str, Dataset]:
    raw: dict[str, dict[str, Any]] = json.loads(path.read_text())
    out = {}
    for name, spec in raw.items():
        git = spec.get("git")
        source = None
        if git is not None:
            source = GitSource(git["url"], git["commit"], tuple(git["include"]), bool(git.get("flatten", False)))
        out[name] = Dataset(
            name=name,
            title=spec["title"],
            used_for=spec["used_for"],
            terms=spec["terms"],
            size=spec["size"],
            git=source,
            expect=dict(spec["expect"]),
            coco=tuple(spec.get("coco", ())),
            tsv_rows=dict(spec.get("tsv_rows", {})),
        )
    return out


# -------------------------------------------------------------------------------------------------- checking


def check(dataset: Dataset, folder: Path) -> list[str]:
    """What is wrong with `folder` as `dataset` (empty: nothing)."""
    if not folder.is_dir():
        return [f"{folder} does not exist"]
    problems = []
    for pattern, count in dataset.expect.items():
        found = len([p for p in folder.glob(pattern) if p.is_file()])
        if found != count:
            problems.append(f"{pattern}: {found} files, expected {count}")
    for relative in dataset.coco:
        problems += _check_coco(folder / relative)
    for relative, rows in dataset.tsv_rows.items():
        path = folder / relative
        if path.is_file():
            lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
            if len(lines) != rows:
                problems.append(f"{relative}: {len(lines)} rows, expected {rows}")
    return problems


def _check_coco(path: Path) -> list[str]:
    try:
        coco = json.loads(path.read_text())
        images = coco["images"]
        annotations = coco["annotations"]
        categories = coco["categories"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{path}: not a COCO annotation file ({type(exc).__name__}: {exc})"]
    problems = []
    missing = [i["file_name"] for i in images if not (path.parent / "JPEGImages" / i["file_name"]).is_file()]
    if missing:
        problems.append(f"{path}: {len(missing)} images missing from JPEGImages (first: {missing[0]})")
    ids = {i["id"] for i in images}
    orphans = sum(a["image_id"] not in ids for a in annotations)
    if orphans:
        problems.append(f"{path}: {orphans} annotations of unknown images")
    if not categories:
        problems.append(f"{path}: no categories")
    return problems


# -------------------------------------------------------------------------------------------------- fetching


def _git(*args: str, cwd: Path) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DataError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def fetch_git(source: GitSource, dest: Path, url: str | None = None) -> str:
    """Write the `include` paths of the pinned commit into `dest`; returns the full commit id.

    A shallow fetch of the one commit where the server allows it (GitHub does), else the whole history."""
    url = url or source.url
    with tempfile.TemporaryDirectory(prefix="carpose-data-") as tmp:
        repo = Path(tmp)
        _git("init", "--quiet", "--bare", cwd=repo)
        try:
            _git("fetch", "--quiet", "--depth", "1", url, source.commit, cwd=repo)
        except DataError:
            _git("fetch", "--quiet", url, "+refs/heads/*:refs/remotes/origin/*", cwd=repo)
        try:
            commit = _git("rev-parse", "--verify", f"{source.commit}^{{commit}}", cwd=repo).strip()
        except DataError as exc:
            raise DataError(f"{url} has no commit {source.commit}") from exc
        paths = [p for p in _git("ls-tree", "-r", "--name-only", commit, cwd=repo).splitlines() if _wanted(p, source)]
        if not paths:
            raise DataError(f"commit {commit} of {url} has none of {list(source.include)}")
        archive = subprocess.run(["git", "archive", commit, "--", *paths], cwd=repo, capture_output=True, check=True)
        _extract(archive.stdout, dest, flatten=source.flatten)
    return commit


def _wanted(path: str, source: GitSource) -> bool:
    # fnmatch's `*` crosses `/`: "trainingset/*" takes the whole folder.
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in source.include)


def _extract(archive: bytes, dest: Path, flatten: bool) -> None:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            target = dest / (Path(member.name).name if flatten else member.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None  # a regular file
            target.write_bytes(source.read())


def copy_from(folder: Path, dest: Path, link: bool) -> None:
    if not folder.is_dir():
        raise DataError(f"--from {folder}: not a folder")
    if link:
        dest.symlink_to(folder.resolve(), target_is_directory=True)
    else:
        shutil.copytree(folder, dest, symlinks=False)


def get(
    dataset: Dataset,
    root: Path,
    *,
    from_dir: Path | None = None,
    link: bool = False,
    mirror: str | None = None,
    say: Callable[[str], None] = print,
) -> Path:
    """Make `root/<name>` hold `dataset` (unless it already passes its check); returns that folder."""
    dest = root / dataset.name
    if dest.exists() or dest.is_symlink():
        problems = check(dataset, dest)
        if not problems:
            say(f"{dataset.name}: already in place at {dest}")
            return dest
        raise DataError(f"{dest} exists but fails its check ({'; '.join(problems)}): move it away and run again")
    root.mkdir(parents=True, exist_ok=True)
    if from_dir is not None:
        copy_from(from_dir, dest, link)
        say(f"{dataset.name}: {'linked' if link else 'copied'} from {from_dir}")
    elif dataset.git is not None:
        url = mirror or dataset.git.url
        say(f"{dataset.name}: fetching {url} at {dataset.git.commit} ({dataset.size})")
        partial = root / f".{dataset.name}.partial"  # renamed into place only once complete
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        try:
            commit = fetch_git(dataset.git, partial, url)
            stamp = {"url": dataset.git.url, "fetched_from": url, "commit": commit, "terms": dataset.terms}
            (partial / SOURCE_STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
            partial.rename(dest)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    else:
        raise DataError(f"{dataset.name} has no public source ({dataset.terms})")
    problems = check(dataset, dest)
    if problems:
        raise DataError(f"{dest} fails its check: {'; '.join(problems)}")
    return dest
