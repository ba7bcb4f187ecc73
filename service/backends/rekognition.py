"""Amazon Rekognition backend: DetectLabels (car + wheels) or DetectCustomLabels (car parts) -> detections.

The backend only translates: the image goes up as JPEG/PNG bytes, the boxes come back as ratios of the
image, and the shared postprocessing turns them into a pose exactly as it does for Detectron2. Every
failure of the upstream call becomes a `PoseError` with the service's error shape (see `ERROR_MAP`).

Credentials come from the standard boto3 chain of a session of our own (`boto3.session.Session()`): boto3's
process-wide default session would cache whatever it found first for every client in the process.
"""

from __future__ import annotations

import io
import logging
import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    HTTPClientError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from PIL import Image

from ..exceptions import PoseError
from ..imaging import DecodedImage, WorkingSize
from ..metrics import UPSTREAM_DURATION, UPSTREAM_ERRORS
from ..postprocess import CAR_LABEL, WHEEL_LABEL, Detection
from ..postprocess.vocabulary import KNOWN_LABELS
from ..settings import Settings

log = logging.getLogger("service.backends.rekognition")

BACKEND = "rekognition"
# Image.Bytes limit of DetectLabels / DetectCustomLabels: the service model's ImageBlob max (5 MiB).
MAX_IMAGE_BYTES = 5 * 1024 * 1024
SENDABLE_FORMATS = frozenset({"JPEG", "PNG"})
REENCODE_QUALITY = 90
# Upstream calls mostly wait on the network, so more of them may run at once than model calls.
REKOGNITION_WORKERS = 8
# DetectLabels names (case as Rekognition spells them) -> our labels. Only these carry usable instance boxes.
DETECT_LABELS_MAP: dict[str, str] = {"Car": CAR_LABEL, "Wheel": WHEEL_LABEL}
CREDENTIALS_RECHECK_S = 10.0
# The pixels decoded for Rekognition: it finds cars and wheels well at full-HD, and a smaller upload is faster
# to send.
UPSTREAM_WORKING_SIZE = WorkingSize(1080, 1920)


@dataclass(frozen=True)
class UpstreamError:
    code: str  # its HTTP status is in service.api.errors.ERROR_CODES
    message: str  # what to tell the client; the AWS code and message are appended
    retry_after_s: int | None = None


_THROTTLED = UpstreamError("upstream_throttled", "Amazon Rekognition is throttling requests", 2)
_UNAVAILABLE = UpstreamError("upstream_unavailable", "Amazon Rekognition had an internal error", 5)
_INVALID_CREDENTIALS = UpstreamError(
    "upstream_invalid_credentials", "Amazon Rekognition rejected the service's AWS credentials"
)
ERROR_MAP: dict[str, UpstreamError] = {
    "ThrottlingException": _THROTTLED,
    "ProvisionedThroughputExceededException": _THROTTLED,
    "LimitExceededException": _THROTTLED,
    "InternalServerError": _UNAVAILABLE,
    "ServiceUnavailable": _UNAVAILABLE,
    "ServiceUnavailableException": _UNAVAILABLE,
    "InvalidImageFormatException": UpstreamError(
        "upstream_invalid_image", "Amazon Rekognition could not read the image"
    ),
    "ImageTooLargeException": UpstreamError(
        "upstream_image_too_large", "Amazon Rekognition refused the image as too large"
    ),
    "InvalidParameterException": UpstreamError(
        "upstream_invalid_parameter", "Amazon Rekognition refused the request's parameters (image size?)"
    ),
    "AccessDeniedException": UpstreamError(
        "upstream_access_denied", "the service's AWS identity may not call Amazon Rekognition (IAM policy)"
    ),
    "UnrecognizedClientException": _INVALID_CREDENTIALS,
    "InvalidSignatureException": _INVALID_CREDENTIALS,
    "SignatureDoesNotMatch": _INVALID_CREDENTIALS,
    "IncompleteSignature": _INVALID_CREDENTIALS,
    "MissingAuthenticationToken": _INVALID_CREDENTIALS,
    "InvalidClientTokenId": _INVALID_CREDENTIALS,
    "ExpiredToken": _INVALID_CREDENTIALS,
    "ExpiredTokenException": _INVALID_CREDENTIALS,
    "ResourceNotReadyException": UpstreamError(
        "upstream_model_not_running",
        "the Rekognition Custom Labels model is not running; start it with StartProjectVersion",
        30,
    ),
    "ResourceNotFoundException": UpstreamError(
        "upstream_model_not_found", "the Rekognition Custom Labels model was not found (check the ARN)"
    ),
}
_OTHER = UpstreamError("upstream_error", "Amazon Rekognition answered with an error")


@dataclass(frozen=True)
class UpstreamImage:
    """The bytes sent to Rekognition. Same orientation and aspect as the EXIF-corrected image, maybe smaller."""

    data: bytes
    format: str
    width: int
    height: int
    reencoded: bool


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=REENCODE_QUALITY)
    return buffer.getvalue()


def prepare_image(image: DecodedImage, max_bytes: int = MAX_IMAGE_BYTES) -> UpstreamImage:
    """The upload as is when Rekognition takes it, else the EXIF-corrected pixels as a JPEG under `max_bytes`.

    EXIF-rotated uploads are re-encoded too: AWS documents its own EXIF correction for JPEG only, and sending
    pixels that are already upright makes the returned ratios refer to the corrected image whatever Rekognition
    does with metadata. Downscaling keeps the aspect ratio, so ratios times the corrected size stay valid.
    """
    if image.format in SENDABLE_FORMATS and not image.exif_rotated and len(image.data) <= max_bytes:
        return UpstreamImage(image.data, image.format, image.width, image.height, reencoded=False)
    pil = Image.fromarray(image.rgb)
    data = _jpeg(pil)
    scaled = pil
    while len(data) > max_bytes and min(scaled.size) > 16:
        # JPEG size grows about with the pixel count; aim a little under the limit, but always shrink.
        factor = min(0.9, max(0.5, 0.95 * math.sqrt(max_bytes / len(data))))
        size = (max(1, round(scaled.width * factor)), max(1, round(scaled.height * factor)))
        scaled = pil.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        data = _jpeg(scaled)
    return UpstreamImage(data, "JPEG", scaled.width, scaled.height, reencoded=True)


def _ratio_box(box: Any, width: int, height: int) -> tuple[float, float, float, float] | None:
    """Rekognition BoundingBox (ratios of the image) -> pixel box of a `width` x `height` image, or None."""
    if not isinstance(box, dict):
        return None
    try:
        left, top = float(box["Left"]), float(box["Top"])
        w, h = float(box["Width"]), float(box["Height"])
    except (KeyError, TypeError, ValueError):
        return None
    return (left * width, top * height, (left + w) * width, (top + h) * height)


def detections_from_labels(response: dict[str, Any], width: int, height: int) -> list[Detection]:
    """DetectLabels: the instances (with boxes) of `Car` and `Wheel`; image-level labels carry no box."""
    out: list[Detection] = []
    for label in response.get("Labels") or ():
        ours = DETECT_LABELS_MAP.get(str(label.get("Name", "")))
        if ours is None:
            continue
        for instance in label.get("Instances") or ():
            box = _ratio_box(instance.get("BoundingBox"), width, height)
            confidence = instance.get("Confidence", label.get("Confidence"))
            if box is None or confidence is None:
                continue
            out.append(Detection(label=ours, box=box, score=float(confidence) / 100.0))
    if not any(d.label == CAR_LABEL for d in out):
        # DetectLabels finds cars itself: without a Car instance there is no car, only wheels (a tyre shop,
        # a bicycle). The postprocessing would otherwise build a car from the wheels' union, as it does for
        # parts-only Custom Labels models, and report a car that Rekognition did not see.
        return []
    return out


def _normalise(name: str) -> str:
    # "Front Bumper", "front-bumper" and "front_bumper" are the same class in a Custom Labels project.
    return re.sub(r"[\s\-]+", "_", name.strip()).lower()


def map_custom_label(name: str, label_map: dict[str, str]) -> str:
    """Custom Labels name -> our label: the configured map first, else the name itself (normalised)."""
    if name in label_map:
        return label_map[name]
    return name if name in KNOWN_LABELS else _normalise(name)


def detections_from_custom_labels(
    response: dict[str, Any], width: int, height: int, label_map: dict[str, str]
) -> list[Detection]:
    """DetectCustomLabels: labels with a Geometry box (object detection models); classification labels have none."""
    out: list[Detection] = []
    for label in response.get("CustomLabels") or ():
        box = _ratio_box((label.get("Geometry") or {}).get("BoundingBox"), width, height)
        confidence = label.get("Confidence")
        if box is None or confidence is None:
            continue
        ours = map_custom_label(str(label.get("Name", "")), label_map)
        out.append(Detection(label=ours, box=box, score=float(confidence) / 100.0))
    return out


def _arn_model(arn: str) -> dict[str, str]:
    # arn:aws:rekognition:REGION:ACCOUNT:project/PROJECT/version/VERSION/TIMESTAMP
    match = re.search(r":project/([^/]+)/version/([^/]+)", arn)
    if match is None:
        return {"name": "rekognition-custom-labels", "version": arn}
    return {"name": match.group(1), "version": match.group(2)}


class RekognitionBackend:
    """Amazon Rekognition (`DetectionBackend`): every image is an upstream request of its own."""

    name = BACKEND
    device = "remote"
    # No batched call upstream: the gate's REKOGNITION_WORKERS requests run side by side instead.
    supports_batch = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.arn = settings.rekognition_project_version_arn or None
        self.operation = "DetectCustomLabels" if self.arn else "DetectLabels"
        self.label_map = dict(settings.rekognition_label_map)
        unknown = sorted(v for v in self.label_map.values() if v not in KNOWN_LABELS)
        if unknown:
            # The postprocessing ignores unknown labels silently; a typo here would quietly lose the pose.
            log.warning(
                "POSE_REKOGNITION_LABEL_MAP maps to unknown labels %s (known: %s)", unknown, sorted(KNOWN_LABELS)
            )
        self.config = Config(
            region_name=settings.rekognition_region,
            connect_timeout=settings.rekognition_connect_timeout_s,
            read_timeout=settings.rekognition_read_timeout_s,
            # total_max_attempts counts the first try; max_attempts would count retries only.
            retries={"total_max_attempts": settings.rekognition_total_max_attempts, "mode": "standard"},
        )
        self._session = boto3.session.Session(region_name=settings.rekognition_region)
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._label_model_version = "unknown"
        self._no_credentials_until = 0.0

    def working_size(self) -> WorkingSize:
        return UPSTREAM_WORKING_SIZE

    def info(self) -> dict[str, str]:
        if self.arn:
            return _arn_model(self.arn)
        return {"name": "rekognition-detect-labels", "version": self._label_model_version}

    def _get_client(self) -> Any:
        # Created on first use (not at startup) so a service whose credentials arrive later still works, and
        # only once: clients are thread-safe and hold the connection pool. Creating one is not thread-safe.
        with self._client_lock:
            if self._client is None:
                self._client = self._session.client(
                    "rekognition", endpoint_url=self.settings.rekognition_endpoint_url, config=self.config
                )
            return self._client

    def _has_credentials(self) -> bool:
        # A resolved chain is cached by the session, so this is cheap once found. A missing one is looked up
        # again only every few seconds: the chain ends with the instance metadata service, whose timeouts would
        # add a second or two to every request of a misconfigured service.
        if time.monotonic() < self._no_credentials_until:
            return False
        if self._session.get_credentials() is None:
            self._no_credentials_until = time.monotonic() + CREDENTIALS_RECHECK_S
            return False
        return True

    def credentials_available(self) -> bool:
        """Whether AWS credentials are found (blocking: may ask the instance metadata service; cached)."""
        return self._has_credentials()

    def _fail(self, error: UpstreamError, metric_code: str, detail: str) -> PoseError:
        UPSTREAM_ERRORS.labels(backend=BACKEND, code=metric_code).inc()
        log.warning("Rekognition %s failed: %s (%s)", self.operation, metric_code, detail)
        return PoseError(error.code, f"{error.message}: {detail}", error.retry_after_s)

    def call(self, upstream: UpstreamImage) -> dict[str, Any]:
        """One (retried by botocore) upstream call; every failure raised as a PoseError."""
        # Without credentials botocore would fail only at signing time; checking first keeps the answer
        # explicit and guarantees no request leaves.
        if not self._has_credentials():
            raise self._fail(
                UpstreamError("upstream_credentials_missing", "no AWS credentials found"),
                "credentials_missing",
                "configure the standard AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
                "or an instance/task role)",
            )
        params: dict[str, Any] = {
            "Image": {"Bytes": upstream.data},
            "MinConfidence": float(self.settings.rekognition_min_confidence),
        }
        if self.arn:
            params["ProjectVersionArn"] = self.arn
        client = self._get_client()
        method = client.detect_custom_labels if self.arn else client.detect_labels
        started = time.perf_counter()
        try:
            response: dict[str, Any] = method(**params)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code = str(err.get("Code") or "Unknown")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            mapped = ERROR_MAP.get(code)
            if mapped is None:
                # Unknown codes: 5xx from AWS is its problem (503), anything else is ours to look at (502).
                mapped = _UNAVAILABLE if isinstance(status, int) and status >= 500 else _OTHER
            message = str(err.get("Message") or "")
            raise self._fail(mapped, code, f"{code}: {message}" if message else code) from exc
        except NoCredentialsError as exc:  # credentials vanished between the check and the call
            raise self._fail(
                UpstreamError("upstream_credentials_missing", "no AWS credentials found"),
                "credentials_missing",
                str(exc),
            ) from exc
        except (ConnectTimeoutError, ReadTimeoutError) as exc:  # first: ConnectTimeoutError is a ConnectionError
            raise self._fail(
                UpstreamError("upstream_timeout", "Amazon Rekognition did not answer in time"),
                "timeout",
                type(exc).__name__,  # botocore's message names the endpoint URL: for our log, not for clients
            ) from exc
        # EndpointConnectionError (refused, DNS) and proxy errors are ConnectionErrors; a dropped connection is
        # an HTTPClientError (ConnectionClosedError among them).
        except (BotoConnectionError, ConnectionClosedError, HTTPClientError) as exc:
            raise self._fail(
                UpstreamError("upstream_unreachable", "Amazon Rekognition could not be reached"),
                "connection",
                type(exc).__name__,
            ) from exc
        except BotoCoreError as exc:
            raise self._fail(_OTHER, type(exc).__name__, str(exc)) from exc
        finally:
            UPSTREAM_DURATION.labels(backend=BACKEND, operation=self.operation).observe(time.perf_counter() - started)
        return response

    def detect_batch(self, images: Sequence[DecodedImage]) -> list[list[Detection]]:
        return [self.detect(image) for image in images]

    def detect(self, image: DecodedImage) -> list[Detection]:
        upstream = prepare_image(image)
        if upstream.reencoded:
            log.debug(
                "re-encoded %s %dx%d (%d bytes) as JPEG %dx%d (%d bytes) for Rekognition",
                image.format,
                image.width,
                image.height,
                len(image.data),
                upstream.width,
                upstream.height,
                len(upstream.data),
            )
        response = self.call(upstream)
        # Ratios of the image sent, which has the corrected image's orientation and aspect: scale to its size.
        if self.arn:
            return detections_from_custom_labels(response, image.width, image.height, self.label_map)
        version = response.get("LabelModelVersion")
        if version:
            self._label_model_version = str(version)
        return detections_from_labels(response, image.width, image.height)
