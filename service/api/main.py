"""The carpose FastAPI application (`service.api.main:app`)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from ..backends.registry import BACKENDS, spec_named
from ..gate import DecodeLimiter, InferenceGate
from ..model_state import ModelState
from ..settings import REPO_ROOT, Settings, get_settings
from .auth import ApiKeyMiddleware, ApiKeys, declare_security, install_reload_on_sighup
from .cors import CORSMiddleware
from .dependencies import Serving
from .drain import install_drain_on_sigterm
from .errors import install_error_handlers
from .middleware import (
    MULTIPART_ENVELOPE_BYTES,
    POSE_GATES,
    AdmissionMiddleware,
    BodySizeLimitMiddleware,
    RequestMetricsMiddleware,
    SecurityHeadersMiddleware,
)
from .openapi import DESCRIPTION
from .routers import backends, coverage, health, pose, sagemaker, web
from .routers.coverage import COVERAGE_PATH
from .routers.web import STATIC_DIR


def app_version() -> str:
    """The package's version (pyproject.toml, stated once): from the installed metadata, or from pyproject.toml
    itself where the code runs uninstalled (the images put /app on PYTHONPATH)."""
    try:
        return version("carpose")
    except PackageNotFoundError:
        match = re.search(r'^version = "([^"]+)"', (REPO_ROOT / "pyproject.toml").read_text(), flags=re.M)
        if match is None:
            raise
        return match.group(1)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A gate per backend: one backend's slow calls must not hold another's slots.
        gates = {
            spec.name: InferenceGate(spec.workers(settings), settings.max_queue, name=spec.name) for spec in BACKENDS
        }
        built = {spec.name: spec.build(settings) for spec in BACKENDS if not spec.local_model}
        serving = app.state.serving = Serving(
            gates=gates,
            decoder=DecodeLimiter.from_settings(settings),
            backends={name: backend for name, backend in built.items() if backend is not None},
        )
        app.state.model.start()
        install_drain_on_sigterm(list(gates.values()), settings.drain_timeout_s)
        install_reload_on_sighup(api_keys)
        yield
        serving.shutdown()

    # FastAPIOffline serves the Swagger UI / ReDoc assets from its wheel: /docs works without internet access.
    app = FastAPIOffline(title="carpose", version=app_version(), description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.model = ModelState(settings)
    api_keys = app.state.api_keys = ApiKeys(settings.api_keys, settings.api_keys_file)
    install_error_handlers(app)
    app.include_router(pose.pose_router(BACKENDS))
    app.include_router(coverage.router)
    app.include_router(backends.router)
    app.include_router(health.router)
    app.include_router(web.router)
    if settings.sagemaker:  # `carpose serve --sagemaker`, the image's `serve`
        app.include_router(sagemaker.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
    # A photo set is admitted like a single photo, by the local model's gate (its photos then queue one by one).
    local = spec_named("detectron2").name
    admission_gates = {**POSE_GATES, COVERAGE_PATH: local}
    if settings.sagemaker:
        admission_gates["/invocations"] = local
    # The middleware added last runs outermost. From the outside in: headers and metrics see every answer;
    # admission refuses before anything reads the body; the body limit acts before the multipart parser.
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_upload_bytes=settings.max_upload_bytes,
        path_limits={
            COVERAGE_PATH: (
                settings.coverage_max_total_bytes + MULTIPART_ENVELOPE_BYTES,
                f"the photo set is over the limit of {settings.coverage_max_total_bytes} bytes in all",
            )
        },
    )
    app.add_middleware(
        AdmissionMiddleware,
        body_timeout_s=settings.body_timeout_s,
        refusal_delay_s=settings.refusal_delay_s,
        max_uploads=settings.max_uploads,
        gates=admission_gates,
    )
    # Outside admission: a caller without a key takes no place and sends no body (metrics still count it).
    app.add_middleware(ApiKeyMiddleware, keys=api_keys, metrics_require_key=settings.metrics_require_key)
    app.add_middleware(RequestMetricsMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    if settings.cors_origins:  # outermost: every API answer, refusals included, carries the CORS headers
        app.add_middleware(CORSMiddleware, origins=settings.cors_origins)
    if api_keys.enabled:
        declare_security(app, settings.metrics_require_key)
    return app


app = create_app()
