"""`carpose data`: fetches a dataset at its pinned commit from a git repository, copies one from a folder, checks
both, and refuses a broken one. The repository is a local bare one that the test builds (no network)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from models import datasets as d
from models.paths import DEFAULT_DATASET_DIR
from service.cli import main

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(*args: str, cwd: Path) -> str:
    import os

    result = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env={**os.environ, **GIT_ENV}
    )
    return result.stdout.strip()


def write_fake_car_parts(folder: Path) -> None:
    """The upstream layout with the real counts (400 + 100 photos), tiny files and one part each."""
    for split, prefix, count in (("trainingset", "train", 400), ("testset", "car", 100)):
        images = folder / split / "JPEGImages"
        images.mkdir(parents=True)
        coco: dict = {"images": [], "annotations": [], "categories": [{"id": 2, "name": "wheel"}]}
        for i in range(1, count + 1):
            (images / f"{prefix}{i}.jpg").write_bytes(b"\xff\xd8\xff\xd9")
            coco["images"].append({"id": i, "file_name": f"{prefix}{i}.jpg", "width": 4, "height": 4})
            coco["annotations"].append({"id": i, "image_id": i, "category_id": 2, "bbox": [0, 0, 1, 1]})
        (folder / split / "annotations.json").write_text(json.dumps(coco))
    (folder / "README.md").write_text("Car Parts (fake)\n")
    (folder / "Example.ipynb").write_text("{}")  # upstream has more than the dataset: not copied


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A bare repository whose pinned commit holds the dataset and whose later commit breaks it."""
    work = tmp_path_factory.mktemp("upstream-work")
    git("init", "--quiet", "-b", "main", cwd=work)
    write_fake_car_parts(work)
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "V2", cwd=work)
    pinned = git("rev-parse", "HEAD", cwd=work)
    (work / "testset" / "JPEGImages" / "car1.jpg").unlink()  # a later commit the manifest does not pin
    git("commit", "--quiet", "-am", "later", cwd=work)
    bare = tmp_path_factory.mktemp("upstream") / "Car-Parts-Segmentation.git"
    git("clone", "--quiet", "--bare", str(work), str(bare), cwd=work)
    return bare, pinned


def car_parts_pinned_at(url: Path, commit: str) -> d.Dataset:
    dataset = d.load_manifest()["car-parts"]
    assert dataset.git is not None
    return dataclasses.replace(dataset, git=dataclasses.replace(dataset.git, url=str(url), commit=commit))


def test_manifest_pins_the_upstream_commit() -> None:
    dataset = d.load_manifest()["car-parts"]
    assert dataset.git is not None
    assert dataset.git.url == "https://github.com/dsmlr/Car-Parts-Segmentation.git"
    assert dataset.git.commit == "e970560da9785216dafb77f5749456d70864bfeb"
    assert set(d.load_manifest()) == {"car-parts", "car-parts-views", "carvana-turntable"}


def test_fetches_the_pinned_commit_into_the_root(upstream: tuple[Path, str], tmp_path: Path) -> None:
    bare, pinned = upstream
    said: list[str] = []
    folder = d.get(car_parts_pinned_at(bare, pinned), tmp_path / "data", say=said.append)
    assert folder == tmp_path / "data" / "car-parts"
    assert (folder / "testset" / "JPEGImages" / "car1.jpg").is_file(), "took the branch tip, not the pinned commit"
    assert not (folder / "Example.ipynb").exists(), "copied more than the manifest's include"
    assert json.loads((folder / d.SOURCE_STAMP).read_text())["commit"] == pinned
    assert not list((tmp_path / "data").glob(".*partial"))
    assert d.check(d.load_manifest()["car-parts"], folder) == []
    # Run again: nothing to do.
    d.get(car_parts_pinned_at(bare, pinned), tmp_path / "data", say=said.append)
    assert "already in place" in said[-1]


def test_the_later_commit_fails_the_check(upstream: tuple[Path, str], tmp_path: Path) -> None:
    bare, _ = upstream
    later = git("rev-parse", "main", cwd=bare)
    with pytest.raises(d.DataError, match=r"testset/JPEGImages/\*\.jpg: 99 files, expected 100"):
        d.get(car_parts_pinned_at(bare, later), tmp_path)


def test_an_unknown_commit_is_a_clear_error(upstream: tuple[Path, str], tmp_path: Path) -> None:
    bare, _ = upstream
    with pytest.raises(d.DataError, match="has no commit"):
        d.get(car_parts_pinned_at(bare, "0" * 40), tmp_path)
    assert not (tmp_path / "car-parts").exists()


def test_cli_copies_and_links_from_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "usb" / "car-parts"
    write_fake_car_parts(source)
    assert main(["data", "car-parts", "--from", str(source), "--root", str(tmp_path / "copy")]) == 0
    assert (tmp_path / "copy" / "car-parts" / "trainingset" / "annotations.json").is_file()
    out = capsys.readouterr().out
    assert f"car-parts: ok at {tmp_path / 'copy' / 'car-parts'}" in out
    assert main(["data", "car-parts", "--from", str(source), "--root", str(tmp_path / "link"), "--link"]) == 0
    assert (tmp_path / "link" / "car-parts").resolve() == source.resolve()
    assert main(["data", "car-parts", "--check", "--root", str(tmp_path / "link")]) == 0


def test_cli_refuses_a_broken_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "car-parts"
    write_fake_car_parts(source)
    (source / "trainingset" / "JPEGImages" / "train7.jpg").unlink()
    assert main(["data", "car-parts", "--from", str(source), "--root", str(tmp_path / "root")]) == 1
    err = capsys.readouterr().err
    assert "399 files, expected 400" in err and "1 images missing from JPEGImages (first: train7.jpg)" in err


def test_views_without_a_source_say_where_to_get_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "car-parts-views", "--root", str(tmp_path)]) == 1
    assert "no public source" in capsys.readouterr().err


def test_the_data_root_in_use_passes_its_check() -> None:
    """The datasets this checkout reads (CARPOSE_DATA_ROOT) are the ones the manifest describes."""
    if not DEFAULT_DATASET_DIR.is_dir():
        pytest.skip(f"no data at {DEFAULT_DATASET_DIR} (carpose data)")
    assert main(["data", "--check", "--root", str(DEFAULT_DATASET_DIR.parent)]) == 0
