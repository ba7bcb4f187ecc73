"""The CLI's terminal output: no library deprecation noise on a normal run (and only that noise silenced),
progress bars only on a terminal or when asked, `predict` rows naming files as `batch` does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from service import console
from tests.service.helpers import CLEAR_PHOTO

LIBRARY_NOISE = ("torch.jit.script", "torch.jit.trace", "torch.meshgrid", "is_fx_tracing")


def test_only_the_listed_library_warnings_are_silenced() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        console.quiet_library_warnings()
        message = "`torch.jit.script` is deprecated. Please switch to `torch.compile` or `torch.export`."
        warnings.warn_explicit(message, FutureWarning, "_script.py", 1, module="torch.jit._script")
        warnings.warn_explicit(message, FutureWarning, "ours.py", 1, module="service.ours")  # not the library's
        warnings.warn_explicit("something else", FutureWarning, "_script.py", 2, module="torch.jit._script")
    assert [(str(w.message)[:20], w.filename) for w in caught] == [
        (message[:20], "ours.py"),
        ("something else", "_script.py"),
    ]


def test_progress_only_on_a_terminal_or_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(console.PROGRESS_VARIABLE, raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    console.set_quiet(False)
    assert not console.progress_enabled()
    monkeypatch.setenv(console.PROGRESS_VARIABLE, "1")
    assert console.progress_enabled()
    console.set_quiet(True)
    assert not console.progress_enabled()
    console.set_quiet(False)
    assert list(console.progress(iter([1, 2]), total=2)) == [1, 2]


def test_predict_prints_rows_and_nothing_from_the_libraries(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A real `carpose predict` process: warnings at their defaults (not pytest's filters), a relative path in."""
    if not CLEAR_PHOTO.is_file():
        pytest.skip(f"no photo at {CLEAR_PHOTO} (carpose data)")
    photo = tmp_path / "car.jpg"
    photo.write_bytes(CLEAR_PHOTO.read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSE_", "PYTHONWARNINGS"))}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "models.cli",
            "predict",
            "--model-dir",
            str(tiny_model_dir),
            "--device",
            "cpu",
            "car.jpg",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    noise = [line for line in result.stderr.splitlines() if any(n in line for n in LIBRARY_NOISE)]
    assert not noise, noise
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["file"] == str(photo.resolve()), "predict names files absolutely, as batch does"
