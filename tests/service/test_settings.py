"""Every Settings field is read from its POSE_* environment variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError

from service.settings import DEFAULT_MODEL_DIR, Settings

# Field -> (environment value, parsed value); every value differs from the field's default.
ENV_VALUES: dict[str, tuple[str, object]] = {
    "model_dir": ("/srv/models/other", Path("/srv/models/other")),
    "device": ("cuda", "cuda"),
    "score_threshold": ("0.35", 0.35),
    "min_confidence": ("0.4", 0.4),
    "max_upload_bytes": ("1234567", 1234567),
    "max_image_pixels": ("7654321", 7654321),
    "max_queue": ("3", 3),
    "inference_workers": ("2", 2),
    "decode_workers": ("3", 3),
    "decode_memory_mb": ("700", 700),
    "max_decoded_images": ("6", 6),
    "body_timeout_s": ("12.5", 12.5),
    "header_timeout_s": ("4.5", 4.5),
    "max_uploads": ("7", 7),
    "refusal_delay_s": ("0.25", 0.25),
    "drain_timeout_s": ("5", 5.0),
    "batch_max_size": ("16", 16),
    "batch_timeout_ms": ("2.5", 2.5),
    "fp16": ("true", True),
    "cudnn_benchmark": ("false", False),
    "pin_memory": ("false", False),
    "torch_threads": ("4", 4),
    "warmup": ("false", False),
    "frame_margin": ("0.1", 0.1),
    "frame_margin_mode": ("always", "always"),
    "quality_edge_tolerance": ("0.02", 0.02),
    "quality_min_car_fraction": ("0.25", 0.25),
    "quality_min_sharpness": ("300", 300.0),
    "quality_min_brightness": ("0.1", 0.1),
    "quality_max_brightness": ("0.9", 0.9),
    "quality_max_clipped_fraction": ("0.3", 0.3),
    "quality_other_car_min_size": ("0.5", 0.5),
    "quality_max_roll_deg": ("4.5", 4.5),
    "coverage_min_confidence": ("0.8", 0.8),
    "rekognition_enabled": ("true", True),
    "rekognition_region": ("eu-west-1", "eu-west-1"),
    "rekognition_endpoint_url": ("http://127.0.0.1:4566", "http://127.0.0.1:4566"),
    "rekognition_min_confidence": ("75.5", 75.5),
    "rekognition_connect_timeout_s": ("1.5", 1.5),
    "rekognition_read_timeout_s": ("20", 20.0),
    "rekognition_total_max_attempts": ("5", 5),
    "rekognition_project_version_arn": (
        "arn:aws:rekognition:eu-west-1:123456789012:project/cars/version/v1/1",
        "arn:aws:rekognition:eu-west-1:123456789012:project/cars/version/v1/1",
    ),
    "rekognition_label_map": ('{"FrontBumper": "front_bumper"}', {"FrontBumper": "front_bumper"}),
    "coverage_max_images": ("6", 6),
    "coverage_max_total_bytes": ("20000000", 20000000),
    "cors_origins": ("https://shop.example, https://admin.example", ["https://shop.example", "https://admin.example"]),
    "api_keys": ("k-one,k-two", ["k-one", "k-two"]),
    "api_keys_file": ("/run/secrets/carpose_keys", Path("/run/secrets/carpose_keys")),
    "metrics_require_key": ("true", True),
    "sagemaker": ("true", True),
    "log_level": ("debug", "debug"),
    "engine": ("torch", "torch"),
    "engine_cache_dir": ("~/carpose-cache", Path("~/carpose-cache").expanduser()),
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for field in Settings.model_fields:
        monkeypatch.delenv(f"POSE_{field.upper()}", raising=False)
    return monkeypatch


def test_the_table_covers_every_field() -> None:
    assert set(ENV_VALUES) == set(Settings.model_fields), "add the new Settings field to ENV_VALUES"


def test_defaults(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.model_dir == DEFAULT_MODEL_DIR
    for field, (_, value) in ENV_VALUES.items():
        assert getattr(settings, field) != value, f"{field}: pick a non-default test value"


def test_every_field_is_read_from_its_pose_variable(clean_env: pytest.MonkeyPatch) -> None:
    for field, (raw, _) in ENV_VALUES.items():
        clean_env.setenv(f"POSE_{field.upper()}", raw)
    settings = Settings()
    for field, (_, expected) in ENV_VALUES.items():
        assert getattr(settings, field) == expected, field


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("POSE_DEVICE", "tpu"),
        ("POSE_SCORE_THRESHOLD", "1.5"),
        ("POSE_MAX_UPLOAD_BYTES", "0"),
        ("POSE_INFERENCE_WORKERS", "0"),
        ("POSE_MAX_QUEUE", "-1"),
        ("POSE_DECODE_WORKERS", "0"),
        ("POSE_DECODE_MEMORY_MB", "-1"),
        ("POSE_MAX_DECODED_IMAGES", "0"),
        ("POSE_BODY_TIMEOUT_S", "0"),
        ("POSE_MAX_UPLOADS", "0"),
        ("POSE_REFUSAL_DELAY_S", "-1"),
        ("POSE_BATCH_MAX_SIZE", "-1"),
        ("POSE_BATCH_MAX_SIZE", "65"),
        ("POSE_BATCH_TIMEOUT_MS", "-1"),
        ("POSE_FRAME_MARGIN", "-0.1"),
        ("POSE_FRAME_MARGIN_MODE", "sometimes"),
        ("POSE_REKOGNITION_LABEL_MAP", "not json"),
    ],
)
def test_invalid_values_are_refused(clean_env: pytest.MonkeyPatch, variable: str, value: str) -> None:
    clean_env.setenv(variable, value)
    with pytest.raises((ValidationError, SettingsError)):  # bad JSON fails while parsing, before validation
        Settings()


def test_settings_are_frozen(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.max_queue = 99  # type: ignore[misc]


def test_an_empty_engine_cache_dir_turns_the_cache_off(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("POSE_ENGINE_CACHE_DIR", "")
    assert Settings().engine_cache_dir is None
    clean_env.delenv("POSE_ENGINE_CACHE_DIR")
    assert Settings().engine_cache_dir == Path("~/.cache/carpose/openvino").expanduser()
