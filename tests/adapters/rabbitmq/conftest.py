"""Fixtures for the RabbitMQ adapter's tests: a real broker found through ``AMQP_URL``.

``scripts/test`` starts RabbitMQ and exports ``AMQP_URL``. Without it (or with no broker
answering) these tests skip locally, and fail under ``CI=true``: in CI a missing broker is a
broken setup, never a reason to pass.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}; scripts/test starts RabbitMQ and exports AMQP_URL.")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def amqp_url() -> str:
    url = os.environ.get("AMQP_URL")
    if not url:
        _missing("AMQP_URL is not set (source .ci/brokers.sh and run start_rabbitmq)")
        raise AssertionError("unreachable")
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port or 5672), timeout=2).close()
    except OSError as error:
        _missing(f"no RabbitMQ answers at {parts.hostname}:{parts.port} ({error})")
    return url


@pytest.fixture
def queue_names(amqp_url: str) -> Iterator[Callable[[], str]]:
    """Unique queue names for one test; the queues are deleted afterwards."""
    prefix = f"cv-test-{uuid.uuid4().hex[:10]}"
    made: list[str] = []

    def make() -> str:
        name = f"{prefix}-{len(made)}"
        made.append(name)
        return name

    yield make
    delete_queues(amqp_url, made)


def delete_queues(url: str, names: list[str]) -> None:
    if not names:
        return
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for name in names:
            channel.queue_delete(name)
    finally:
        connection.close()
