"""Fixtures of the Rekognition tests: the stand-in server, fake AWS credentials, an app factory."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from botocore.retries.standard import ExponentialBackoff
from fastapi.testclient import TestClient

from service.api.main import create_app
from service.settings import Settings

from .stand_in import StandIn

FAKE_KEY = "AKIACARPOSETEST00000"
# Everything that could make boto3 find real credentials, a profile or another endpoint on this machine.
AWS_ENV_TO_CLEAR = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_REKOGNITION",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "AWS_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
)


@pytest.fixture(scope="session")
def stand_in_server() -> Iterator[StandIn]:
    server = StandIn(access_key=FAKE_KEY).start()
    yield server
    server.stop()


@pytest.fixture
def stand_in(stand_in_server: StandIn) -> Iterator[StandIn]:
    """The session's stand-in, emptied for this test; fails the test if it saw an invalid request or response."""
    stand_in_server.reset()
    yield stand_in_server
    problems = list(stand_in_server.problems)
    leftover = len(stand_in_server.queue)
    stand_in_server.reset()
    assert not problems, f"the Rekognition stand-in found problems: {problems}"
    assert leftover == 0, f"{leftover} scripted answers were never requested"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in AWS_ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    # No instance metadata lookups: they would take seconds here and must never be reached in tests.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "carpose-test-secret-not-a-real-key")


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore sleeps up to 1 s, 2 s, ... between throttled attempts (random jitter). The tests check how many
    # attempts are made, not how long botocore waits, so keep the real retry logic with tiny sleeps.
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.01)


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


AppFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(tiny_model_dir: Path, stand_in: StandIn) -> Iterator[AppFactory]:
    """`make_client(**settings)`: a started app (lifespan run) talking to the stand-in unless told otherwise."""
    stack = ExitStack()
    apps: list[Any] = []

    def factory(**overrides: Any) -> TestClient:
        values: dict[str, Any] = {
            "model_dir": tiny_model_dir,
            "warmup": False,
            "rekognition_enabled": True,
            "rekognition_endpoint_url": stand_in.url,
            "rekognition_region": "us-east-1",
            "rekognition_connect_timeout_s": 1.0,
            "rekognition_read_timeout_s": 5.0,
            "rekognition_total_max_attempts": 3,
        }
        values.update(overrides)
        app = create_app(Settings(**values))
        apps.append(app)
        return stack.enter_context(TestClient(app))

    yield factory
    stack.close()
    for app in apps:
        # The Detectron2 model loads on a thread per app; let it finish so loaders do not pile up on the CPU.
        app.state.model.wait(timeout=60)
