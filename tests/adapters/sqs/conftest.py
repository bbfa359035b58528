"""Fixtures for the SQS adapter's tests: a real SQS-compatible server (moto's, locally).

The server is found through ``SQS_ENDPOINT_URL`` (``scripts/test`` starts one and sets it).
Without it, or when it does not answer, the tests skip locally and FAIL under ``CI=true``:
a CI run that silently skipped the adapter would prove nothing.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest

from conveyor.core.clock import SystemClock
from conveyor_sqs import ClientSettings, SqsTransport


def _endpoint_or_skip() -> str:
    url = os.environ.get("SQS_ENDPOINT_URL")
    problem = None
    if not url:
        problem = "SQS_ENDPOINT_URL is not set (scripts/test starts moto's server and sets it)"
    else:
        parts = urlsplit(url)
        try:
            with socket.create_connection((parts.hostname, parts.port or 80), timeout=2):
                pass
        except OSError as error:
            problem = f"the SQS server at {url} does not answer ({error})"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem}; under CI=true a missing server is a failure, not a skip.")
        pytest.skip(problem)
    assert url is not None
    return url


@pytest.fixture(scope="session")
def sqs_endpoint() -> str:
    url = _endpoint_or_skip()
    # moto accepts any credentials; boto3 needs some, and a region.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return url


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Unique queue-safe names, so tests (and xdist workers) sharing one server never meet."""
    run = uuid.uuid4().hex[:10]
    counter = iter(range(1_000_000))
    return lambda stem: f"{stem}-{run}-{next(counter)}"


@pytest.fixture
def settings(sqs_endpoint: str) -> ClientSettings:
    return ClientSettings(endpoint_url=sqs_endpoint)


@pytest.fixture
def transport(settings: ClientSettings) -> Iterator[SqsTransport]:
    opened = SqsTransport(clock=SystemClock(), settings=settings)
    yield opened
    opened.close()
