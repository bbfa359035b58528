"""Bad URLs, refused connections, wrong passwords, missing databases: each a clear error.

Every message names the server (host, port, database) and what to check, and never the
password, which is a secret of the URL.
"""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from private_server import PrivateRedis

from conveyor import Messaging, SystemClock, VirtualClock
from conveyor.core.errors import ConfigurationError, ConnectionFailed
from conveyor.transports.seam import ChannelOptions, WireMessage
from conveyor_redis import RedisChannel, RedisDeadLetterStore, RedisTransport

SECRET = "s3cret-Pa55word"


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.1:6379/0", "scheme 'http'"),
        ("redis://:6379/0", "names no host"),
        ("redis://127.0.0.1:99999/0", "port that is not a number"),
        ("redis://127.0.0.1:6379/orders", "database 'orders'"),
        ("", "non-empty string"),
    ],
)
def test_a_url_that_cannot_work_is_refused_when_the_channel_is_defined(url: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says) as refused:
        RedisChannel("orders", url=url)
    assert "redis://" in str(refused.value)  # it shows the form that works


def test_a_refused_url_never_shows_its_password() -> None:
    with pytest.raises(ConfigurationError) as refused:
        RedisChannel("orders", url=f"redis://user:{SECRET}@127.0.0.1:6379/orders")

    assert SECRET not in str(refused.value)
    assert "user:***@127.0.0.1:6379" in str(refused.value)


def test_the_channel_and_transport_reprs_never_show_the_password() -> None:
    url = f"redis://:{SECRET}@127.0.0.1:6379/0"
    transport = RedisTransport(url, clock=SystemClock())

    assert SECRET not in repr(RedisChannel("orders", url=url))
    assert SECRET not in repr(transport)
    assert "127.0.0.1:6379" in repr(transport)
    transport.close()


def test_a_refused_connection_fails_bootstrap_naming_host_and_port() -> None:
    port = _closed_port()
    channel = RedisChannel("orders", url=f"redis://:{SECRET}@127.0.0.1:{port}/0")

    with pytest.raises(ConnectionFailed) as failed:
        Messaging(handlers=[], channels=[channel], clock=SystemClock())

    message = str(failed.value)
    assert f"127.0.0.1:{port}" in message
    assert "declaring channel 'orders'" in message
    assert SECRET not in message


def test_a_send_that_cannot_reach_redis_raises_naming_host_and_port() -> None:
    port = _closed_port()
    transport = RedisTransport(f"redis://:{SECRET}@127.0.0.1:{port}/0", clock=SystemClock())

    with pytest.raises(ConnectionFailed) as failed:
        transport.send("orders", WireMessage(b"lost?"))

    assert f"cannot reach Redis at 127.0.0.1:{port}, database 0 while sending" in str(failed.value)
    assert SECRET not in str(failed.value)
    transport.close()


def test_a_store_that_cannot_reach_redis_raises_naming_host_and_port() -> None:
    port = _closed_port()
    store = RedisDeadLetterStore(f"redis://127.0.0.1:{port}/0")

    with pytest.raises(ConnectionFailed, match=f"127.0.0.1:{port}"):
        store.count()
    store.close()


@pytest.fixture
def guarded(tmp_path_factory: pytest.TempPathFactory) -> PrivateRedis:
    server = PrivateRedis(tmp_path_factory.mktemp("guarded"), "--requirepass", SECRET)
    server.start()
    yield server  # type: ignore[misc]
    server.stop()


@pytest.mark.parametrize("password", ["wrong-password", None])
def test_a_wrong_or_missing_password_is_a_clear_error_without_the_password(
    guarded: PrivateRedis, password: str | None
) -> None:
    auth = f":{password}@" if password else ""
    transport = RedisTransport(f"redis://{auth}127.0.0.1:{guarded.port}/0", clock=VirtualClock())

    with pytest.raises(ConnectionFailed) as failed:
        transport.declare(ChannelOptions("orders"))

    message = str(failed.value)
    assert f"Redis at 127.0.0.1:{guarded.port}, database 0 refused the credentials" in message
    assert "password in the URL" in message
    assert "wrong-password" not in message
    assert SECRET not in message
    transport.close()


def test_the_right_password_works(guarded: PrivateRedis) -> None:
    transport = RedisTransport(
        f"redis://:{SECRET}@127.0.0.1:{guarded.port}/0", clock=VirtualClock()
    )
    transport.send("orders", WireMessage(b"let in"))

    assert transport.receive("orders", lease=timedelta(seconds=5))
    transport.close()


def test_a_database_the_server_does_not_have_is_a_clear_error(redis_url: str) -> None:
    base = redis_url.rsplit("/", 1)[0]
    transport = RedisTransport(f"{base}/999", clock=VirtualClock())

    with pytest.raises(ConnectionFailed, match="has no database 999"):
        transport.declare(ChannelOptions("orders"))
    transport.close()
