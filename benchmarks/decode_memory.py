"""Bytes of memory per decoded pixel, per format: what a full-size decode of each accepted format costs.

For each format a worst-case file at the pixel limit (7680x5120, 39.3 MP: lossless WebP of a flat picture is
1.7 KB) is written once, then decoded by `decode_upload` in a fresh subprocess, which reports its peak RSS
(VmHWM) before and after the decode. The difference over the pixel count is the figure
`service.imaging.DECODE_BYTES_PER_PIXEL` must cover (docs/operations.md).

    .venv/bin/python -m benchmarks.decode_memory [--width 7680 --height 5120] [--keep DIR]

`--server N` then starts the service with the default model through real uvicorn (127.0.0.1), POSTs N copies
of each worst-case file to /pose at once, and prints the process's peak RSS (VmHWM, reset before each format):
the figure docs/operations.md's memory formula must cover.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import io
import json
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from deploy.measure_pod import proc_memory_mib
from devtools.uvicorn_server import uvicorn_server
from service.imaging import DECODE_BYTES_PER_PIXEL, sniff_format

# VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so a child would start at this process's peak.
CHILD = """
import sys, json
from pathlib import Path
import io
from PIL import Image
from service.imaging import WorkingSize, decode_upload, exif_orientation, stored_target_size
def hwm():
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:"))
    return int(line.split()[1])
data = Path(sys.argv[1]).read_bytes()
working = WorkingSize(800, 1333)
with Image.open(io.BytesIO(data)) as header:  # the pixels decode_upload decodes: a JPEG's are its draft size
    if header.format == "JPEG":
        header.draft("RGB", stored_target_size(*header.size, exif_orientation(header), working))
    pixels = header.width * header.height
before = hwm()
image = decode_upload(data, 1 << 30, 1 << 30, working)
after = hwm()
print(json.dumps({"before_kib": before, "after_kib": after, "pixels": pixels}))
"""


def _flat(width: int, height: int, channels: int = 3) -> Image.Image:
    """A picture with a little structure (a gradient band) that still compresses to almost nothing."""
    array = np.full((height, width, channels), 128, dtype=np.uint8)
    array[: height // 4, :, 0] = np.linspace(0, 255, width, dtype=np.uint8)
    return Image.fromarray(array.squeeze() if channels == 1 else array)


def _save(image: Image.Image, fmt: str, **args: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **args)
    return buf.getvalue()


def _png16(width: int, height: int, color_type: int) -> bytes:
    """A 16-bit PNG (color type 2 RGB or 6 RGBA), written row by row: Pillow cannot write 16-bit colour PNGs."""
    channels = {2: 3, 6: 4}[color_type]
    row = b"\x00" + b"\x80\x00" * channels * width
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row * min(500, height - y)) for y in range(0, height, 500))
    idat += compressor.flush()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


CASES: dict[str, Callable[[int, int], bytes]] = {
    "jpeg": lambda w, h: _save(_flat(w, h), "JPEG", quality=90),
    "jpeg_working_size": lambda w, h: _save(_flat(1333, 800), "JPEG", quality=90),  # decoded whole, no draft
    "png_palette": lambda w, h: _save(_flat(w, h).convert("P"), "PNG"),
    "png_la8": lambda w, h: _save(_flat(w, h, 1).convert("LA"), "PNG"),
    "png_rgb8": lambda w, h: _save(_flat(w, h), "PNG"),
    "png_rgba8": lambda w, h: _save(_flat(w, h, 4), "PNG"),
    "png_gray16": lambda w, h: _save(_flat(w, h, 1).convert("I;16"), "PNG"),
    "png_rgb16": lambda w, h: _png16(w, h, 2),
    "png_rgba16": lambda w, h: _png16(w, h, 6),
    "webp_lossy": lambda w, h: _save(_flat(w, h), "WEBP", quality=80),
    "webp_lossless": lambda w, h: _save(_flat(w, h), "WEBP", lossless=True),
    "webp_lossless_rgba": lambda w, h: _save(_flat(w, h, 4), "WEBP", lossless=True),
    "heic": lambda w, h: _save(_flat(w, h), "HEIF", quality=50),
    "avif": lambda w, h: _save(_flat(w, h), "AVIF", quality=50, speed=10),
    "avif_rgba": lambda w, h: _save(_flat(w, h, 4), "AVIF", quality=50, speed=10),
}


def measure(path: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


async def post_at_once(url: str, data: bytes, copies: int) -> collections.Counter[int]:
    async with httpx.AsyncClient(timeout=300.0) as client:
        responses = await asyncio.gather(
            *(client.post(f"{url}/pose", files={"image": ("worst", data)}) for _ in range(copies))
        )
    return collections.Counter(r.status_code for r in responses)


def through_uvicorn(files: dict[str, Path], copies: int) -> None:
    """Peak RSS of the service while `copies` uploads of each file arrive at once."""
    with tempfile.TemporaryDirectory() as tmp, uvicorn_server({"POSE_TORCH_THREADS": "1"}, Path(tmp) / "log") as server:
        pid = server.process.pid
        ready = proc_memory_mib(pid)
        print(f"\nservice (default model, default settings) ready: RSS {ready['VmRSS']:.0f} MiB")
        print(f"{'case':<20} {'statuses':<24} {'peak RSS MiB':>12}")
        overall = ready["VmHWM"]
        for name, path in files.items():
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS now: this format's peak alone
            statuses = asyncio.run(post_at_once(server.url, path.read_bytes(), copies))
            peak = proc_memory_mib(pid)["VmHWM"]
            overall = max(overall, peak)
            print(f"{name:<20} {dict(sorted(statuses.items()))!s:<24} {peak:>12.0f}")
        print(f"peak RSS over all: {overall:.0f} MiB ({overall / 1024:.2f} GiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=7680)
    parser.add_argument("--height", type=int, default=5120)
    parser.add_argument("--keep", type=Path, help="write the files here (and reuse them on the next run)")
    parser.add_argument("--only", nargs="*", choices=sorted(CASES))
    parser.add_argument("--server", type=int, default=0, metavar="N", help="then N uploads of each at once")
    args = parser.parse_args()
    pixels = args.width * args.height
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"{args.width}x{args.height} = {pixels / 1e6:.1f} MP, one decode per fresh process; decoded MP, B/pixel:")
        print(f"{'case':<20} {'file':>10} {'decoded':>8} {'peak +MiB':>10} {'B/pixel':>8} {'budgeted':>9}")
        files = {name: folder / f"{name}-{args.width}x{args.height}.bin" for name in args.only or CASES}
        for name, path in files.items():
            if not path.exists():
                path.write_bytes(CASES[name](args.width, args.height))
            fmt = sniff_format(path.read_bytes()[:64]) or "?"
            result = measure(path)
            delta = (result["after_kib"] - result["before_kib"]) * 1024
            print(
                f"{name:<20} {path.stat().st_size:>10} {result['pixels'] / 1e6:>8.1f} {delta / 2**20:>10.0f} "
                f"{delta / result['pixels']:>8.1f} "
                f"{DECODE_BYTES_PER_PIXEL.get(fmt, float('nan')):>9}"
            )
        if args.server:
            through_uvicorn(files, args.server)


if __name__ == "__main__":
    main()
