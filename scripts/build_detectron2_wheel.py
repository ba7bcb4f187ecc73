"""Repack the cp310-only ``sal-detectron2`` wheel as a pure-Python ``py3-none-any`` wheel.

Detectron2 is not published on PyPI under its own name. ``sal-detectron2==0.7.2`` is upstream
detectron2 main@a59f056 built for CPython 3.10 only. Its compiled ``_C`` extension is optional for
Mask R-CNN (torchvision supplies NMS and RoIAlign), so dropping it leaves a wheel that installs on
any Python 3 and runs on torch 2.14. Deformable and rotated-box ops are unavailable in this build;
the GPU Docker image compiles upstream detectron2 from the same commit with all of its ops.

Usage: python scripts/build_detectron2_wheel.py OUT_DIR   (prints the path of the built wheel)
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

DIST = "sal-detectron2"
VERSION = "0.7.2"
PURE_TAG = "py3-none-any"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def download_upstream(into: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            f"{DIST}=={VERSION}",
            "--no-deps",
            "--python-version",
            "310",
            "--only-binary=:all:",
            "-d",
            str(into),
            "--quiet",
        ],
        check=True,
    )
    return next(into.glob("sal_detectron2-*.whl"))


def repack(src: Path, out_dir: Path) -> Path:
    out = out_dir / f"sal_detectron2-{VERSION}-{PURE_TAG}.whl"
    dist_info = f"sal_detectron2-{VERSION}.dist-info"
    record_lines: list[str] = []
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            name = item.filename
            if name.startswith("detectron2/_C") or name == f"{dist_info}/RECORD":
                continue
            data = zin.read(name)
            if name == f"{dist_info}/WHEEL":
                lines = [ln for ln in data.decode().splitlines() if not ln.startswith(("Tag:", "Root-Is-Purelib:"))]
                lines += ["Root-Is-Purelib: true", f"Tag: {PURE_TAG}"]
                data = ("\n".join(lines) + "\n").encode()
            zout.writestr(name, data)
            record_lines.append(f"{name},{_record_hash(data)},{len(data)}")
        record_lines.append(f"{dist_info}/RECORD,,")
        zout.writestr(f"{dist_info}/RECORD", "\n".join(record_lines) + "\n")
    return out


def main() -> None:
    out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "build/wheels").resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"sal_detectron2-{VERSION}-{PURE_TAG}.whl"
    if not target.exists():
        with tempfile.TemporaryDirectory() as tmp:
            target = repack(download_upstream(Path(tmp)), out_dir)
    print(target)


if __name__ == "__main__":
    main()
