"""All runtime configuration in one object, read from `POSE_*` environment variables (see the README)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .engines import AUTO, DEFAULT_CPU_ENGINE, DEFAULT_CUDA_ENGINE, ENGINE_CHOICES

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "carparts_mnv2_fpn"
# Upload limits, also the runtime's own defaults where it runs without settings (evaluation, the turntable).
DEFAULT_MAX_UPLOAD_BYTES = 10_000_000
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
# Grey margin around the photo for the local model's detection (service.margin), also the runtime's default where it
# runs without settings (evaluation, the turntable): measured in docs/views.md.
DEFAULT_FRAME_MARGIN = 0.0  # off by default: docs/decisions.md (a tight photo's second pass costs CPU time)
DEFAULT_FRAME_MARGIN_MODE: Literal["tight", "always"] = "tight"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POSE_", extra="ignore", frozen=True)

    model_dir: Path = Field(DEFAULT_MODEL_DIR, description="Model directory (config.yaml, weights, model.json)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = CUDA when available")
    score_threshold: float = Field(0.5, ge=0.0, le=1.0, description="Minimum detection score")
    min_confidence: float = Field(
        0.0, ge=0.0, le=1.0, description="Default view confidence floor (low_confidence below); 0 = off"
    )
    max_upload_bytes: int = Field(DEFAULT_MAX_UPLOAD_BYTES, gt=0, description="Upload size limit; 413 above")
    max_image_pixels: int = Field(DEFAULT_MAX_IMAGE_PIXELS, gt=0, description="Decoded pixel limit; 413 above")
    max_queue: int = Field(
        8, ge=0, description="Requests with a whole body admitted beyond the running ones (decoding, waiting)"
    )
    inference_workers: int = Field(1, ge=1, description="Concurrent model calls")
    decode_workers: int = Field(2, ge=1, description="Concurrent image decodes (threads)")
    decode_memory_mb: int = Field(
        0,
        ge=0,
        description="Memory for full-size decodes at once (MB; each reserves pixels x its format's bytes per pixel); "
        "0 = one decode of the costliest format at max_image_pixels",
    )
    max_decoded_images: int = Field(4, ge=1, description="Decoded images alive at once, at the model's input size")
    max_uploads: int = Field(64, ge=1, description="Pose request bodies being received at once before 503")
    body_timeout_s: float = Field(30.0, gt=0, description="Time allowed for a pose request's body; 408 after it")
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Time allowed for a request's headers (service/api/http_protocol.py); 408 and closed after it",
    )
    drain_timeout_s: float = Field(
        20.0, ge=0, description="On SIGTERM: refuse new requests, wait this long at most for admitted ones, stop"
    )
    refusal_delay_s: float = Field(
        1.0, ge=0, description="An `overloaded` 503 is held this long: clients that retry at once cannot spin"
    )
    batch_max_size: int = Field(
        0, ge=0, le=64, description="Images per model call (dynamic batching); 0 = the device's default, 1 = off"
    )
    batch_timeout_ms: float = Field(
        5.0, ge=0, le=1000, description="A free worker waits this long for more requests to join a batch"
    )
    fp16: bool = Field(False, description="float16 autocast of the model on CUDA (ignored on CPU)")
    cudnn_benchmark: bool = Field(True, description="cudnn.benchmark on CUDA: the fastest algorithms per shape")
    pin_memory: bool = Field(True, description="Page-locked host memory for the copy to the GPU (ignored on CPU)")
    torch_threads: int = Field(
        0,
        ge=0,
        description="Threads of one model call: torch's intra-op threads and, with an OpenVINO engine, its inference "
        "threads; 0 = their default (one per core)",
    )
    engine: str = Field(
        AUTO,
        description="What runs the model's networks: " + ", ".join(ENGINE_CHOICES) + " (auto = "
        f"{DEFAULT_CPU_ENGINE} on a CPU, {DEFAULT_CUDA_ENGINE} on CUDA; docs/engines.md)",
    )
    engine_cache_dir: Path | None = Field(
        Path("~/.cache/carpose/openvino"),
        description="Where an OpenVINO engine keeps its converted networks between starts (named by a digest of "
        "the model and the converter); empty = convert at every start",
        validate_default=True,  # ~ expanded
    )
    warmup: bool = Field(True, description="Run one inference before /readyz reports ready")
    frame_margin: float = Field(
        DEFAULT_FRAME_MARGIN,
        ge=0.0,
        le=1.0,
        description="Grey margin added on each side of a tight photo for the local model's detection (share of "
        "that side; answers stay in the photo's pixels): web photos framed tight to the car get their yaw right "
        "more often (docs/views.md); 0 = off",
    )
    frame_margin_mode: Literal["tight", "always"] = Field(
        DEFAULT_FRAME_MARGIN_MODE,
        description="tight: detect again with the margin only where the car comes within 5 % of a border (a "
        "second pass for those photos; whole_car reads the first); always: every photo detected once, on the "
        "margin (whole_car reads that pass: half-car close-ups may pass as whole)",
    )

    quality_edge_tolerance: float = Field(
        0.01,
        ge=0.0,
        le=0.2,
        description="quality.in_frame: a car box edge this close to the border (share of the side) is cut",
    )
    quality_min_car_fraction: float = Field(
        0.1, ge=0.0, le=1.0, description="quality.large_enough: least car box area / image area"
    )
    quality_min_sharpness: float = Field(
        150.0, ge=0.0, description="quality.sharp: least variance of the Laplacian on the car region (docs/quality.md)"
    )
    quality_min_brightness: float = Field(0.2, ge=0.0, le=1.0, description="quality.exposure_ok: least car luminance")
    quality_max_brightness: float = Field(0.8, ge=0.0, le=1.0, description="quality.exposure_ok: most car luminance")
    quality_max_clipped_fraction: float = Field(
        0.2, ge=0.0, le=1.0, description="quality.exposure_ok: most share of black or white car pixels"
    )
    quality_other_car_min_size: float = Field(
        0.3,
        ge=0.0,
        description="quality.other_cars: another car counts when its box outside the posed car's box is at least "
        "this share of the posed car's box area; 0 = every other car counts",
    )
    quality_max_roll_deg: float = Field(
        8.0,
        ge=0.0,
        le=90.0,
        description="quality.level: most |roll_deg| (camera roll) of a level photo; beyond it guidance says "
        "hold_level (docs/quality.md)",
    )

    rekognition_enabled: bool = Field(False, description="Enable POST /pose/rekognition")
    rekognition_region: str = Field("us-east-1", description="AWS region of Rekognition")
    rekognition_endpoint_url: str | None = Field(None, description="Endpoint override (tests, VPC endpoints)")
    rekognition_min_confidence: float = Field(50.0, ge=0.0, le=100.0, description="MinConfidence sent")
    rekognition_connect_timeout_s: float = Field(3.0, gt=0, description="botocore connect timeout")
    rekognition_read_timeout_s: float = Field(10.0, gt=0, description="botocore read timeout")
    rekognition_total_max_attempts: int = Field(3, ge=1, description="botocore total_max_attempts (first try included)")
    rekognition_project_version_arn: str | None = Field(None, description="Use DetectCustomLabels with this model")
    rekognition_label_map: dict[str, str] = Field(
        default_factory=dict, description="JSON object: Custom Labels name -> carpose part name"
    )

    coverage_max_images: int = Field(24, ge=1, le=256, description="Photos per POST /coverage; 413 above")
    coverage_min_confidence: float = Field(
        0.97,
        ge=0.0,
        le=1.0,
        description="POST /coverage counts a view only at this confidence or more (default of its min_confidence; "
        "the page marks answers below it 'not sure'): the floor where the default model's eight-way view is right "
        ">= 97% on held-out photos, docs/views.md",
    )
    coverage_max_total_bytes: int = Field(
        60_000_000, gt=0, description="Body size limit of POST /coverage (all its photos together); 413 above"
    )

    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma list of origins allowed to call the API from a browser; empty = none"
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        repr=False,  # keys never reach logs
        description="Comma list of API keys; when set (or api_keys_file), the API needs one",
    )
    api_keys_file: Path | None = Field(None, description="File of API keys, one a line; reloaded on change or SIGHUP")
    metrics_require_key: bool = Field(False, description="GET /metrics needs an API key too (when keys are set)")

    sagemaker: bool = Field(False, description="Also serve the SageMaker contract: GET /ping, POST /invocations")

    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level")

    @field_validator("engine_cache_dir", mode="before")
    @classmethod
    def _cache_dir(cls, value: object) -> object:
        if value == "" or value is None:
            return None
        return Path(str(value)).expanduser()

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        if value not in ENGINE_CHOICES:
            raise ValueError(f"one of {', '.join(ENGINE_CHOICES)}")
        return value

    @field_validator("cors_origins", "api_keys", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
