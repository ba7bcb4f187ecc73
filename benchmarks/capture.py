"""The capture page's live check round trip against the single-photo POST /pose, on this machine.

    .venv/bin/python -m benchmarks.capture [--photo FILE] [--checks 15] [--model-dir DIR]

Starts the service (embedded model, CPU, one torch thread as the page tests run it) under uvicorn and a headless
Debian Chromium whose camera is a fake device showing `--photo` (a 960x640 .y4m made from it). /capture, aimed at
a view the photo does not show (so no shot is taken), checks a frame about once a second; the page's
`carpose-check` performance measures (frame encode + request + answer parsed) are collected. Then the same
service answers `--checks` direct POST /pose requests of the photo at full size and of the page's frame size
(long side 640). Issue 22's target: the live round trip p50 <= the single-photo POST /pose p50 + 50 ms.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from devtools.uvicorn_server import server_env, uvicorn_server
from models.paths import DEFAULT_TURNTABLE_DIR
from service.settings import DEFAULT_MODEL_DIR

CHROMIUM = "/usr/bin/chromium"
FRAME_LONG_SIDE = 640  # capture.js CHECK_LONG_SIDE


def write_y4m(photo: Path, path: Path, width: int = 960, height: int = 640) -> None:
    rgb = np.asarray(Image.open(photo).convert("RGB").resize((width, height)), dtype=np.float32)
    y = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    u = (rgb[..., 2] - y) * 0.564 + 128.0
    v = (rgb[..., 0] - y) * 0.713 + 128.0
    half = [p.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3)) for p in (u, v)]
    planes = [np.clip(p, 0, 255).astype(np.uint8).tobytes() for p in (y, *half)]
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F5:1 Ip A1:1 C420jpeg\n".encode() + b"FRAME\n" + b"".join(planes))


def frame_jpeg(photo: Path) -> bytes:
    image = Image.open(photo).convert("RGB")
    scale = FRAME_LONG_SIDE / max(image.size)
    buffer = io.BytesIO()
    image.resize((round(image.width * scale), round(image.height * scale))).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def direct_ms(url: str, data: bytes, count: int) -> list[float]:
    times = []
    with httpx.Client(timeout=120) as client:
        for _ in range(count):
            started = time.perf_counter()
            response = client.post(f"{url}/pose", files={"image": ("p.jpg", data, "image/jpeg")})
            response.raise_for_status()
            times.append((time.perf_counter() - started) * 1000.0)
    return times


def live_ms(url: str, video: Path, count: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--use-fake-device-for-media-stream"]
    args += ["--use-fake-ui-for-media-stream", f"--use-file-for-fake-video-capture={video}"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            context = browser.new_context(viewport={"width": 412, "height": 839}, permissions=["camera"])
            page = context.new_page()
            page.goto(f"{url}/capture?required=back")  # never on target: no shot is taken
            page.get_by_role("button", name="Start camera").click()
            page.wait_for_function(
                f"() => performance.getEntriesByName('carpose-check').length >= {count}", timeout=count * 10_000
            )
            return [
                float(d) for d in page.evaluate("performance.getEntriesByName('carpose-check').map(e => e.duration)")
            ]
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, default=DEFAULT_TURNTABLE_DIR / "00087a6bd4dc_01.jpg")
    parser.add_argument("--checks", type=int, default=15)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "camera.y4m"
        write_y4m(args.photo, video)
        with uvicorn_server(server_env(args.model_dir, log_level="warning"), Path(tmp) / "uvicorn.log") as server:
            direct_ms(server.url, frame_jpeg(args.photo), 2)  # warm the path
            live = live_ms(server.url, video, args.checks)[1:]  # the first check also warms the page
            full = direct_ms(server.url, args.photo.read_bytes(), args.checks)
            frame = direct_ms(server.url, frame_jpeg(args.photo), args.checks)
    result = {
        "checks": len(live),
        "live_check_p50_ms": round(statistics.median(live), 1),
        "pose_full_photo_p50_ms": round(statistics.median(full), 1),
        "pose_frame_p50_ms": round(statistics.median(frame), 1),
    }
    result["target_met"] = result["live_check_p50_ms"] <= result["pose_full_photo_p50_ms"] + 50.0
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
