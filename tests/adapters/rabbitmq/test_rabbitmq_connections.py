"""Bad URLs and credentials give clear errors; a lost connection is reopened and work goes on.

Connection loss is made with :class:`TcpProxy`, which kills the TCP connections between the
transport and the broker at once, as a network failure would, or refuses new ones, as a broker
that is down would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from rabbitmq_kit import TcpProxy, poll_receive

from conveyor.core.clock import SystemClock
from conveyor.core.errors import ConfigurationError, ConnectionFailed, StaleReceipt
from conveyor.transports.seam import WireMessage
from conveyor_rabbitmq import RabbitMQChannel
from conveyor_rabbitmq.async_transport import AsyncRabbitMQTransport
from conveyor_rabbitmq.transport import RabbitMQTransport

LEASE = timedelta(seconds=30)
SECRET = "s3cr3t-p4ss"


@pytest.fixture
def proxy(amqp_url: str) -> Iterator[TcpProxy]:
    opened = TcpProxy(amqp_url)
    yield opened
    opened.close()


def with_credentials(url: str, user: str, password: str, vhost: str = "") -> str:
    parts = urlsplit(url)
    return f"amqp://{user}:{password}@{parts.hostname}:{parts.port}/{vhost}"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://localhost:5672/", "scheme 'http'"),
        ("amqp://guest:guest@:5672/", "names no host"),
        ("amqp://guest:guest@localhost:port/", "port that is not a number"),
        ("", "non-empty string"),
    ],
)
def test_a_malformed_url_is_refused_when_the_channel_is_defined(url: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says) as raised:
        RabbitMQChannel("orders", url=url)
    assert "guest:guest" not in str(raised.value)


def test_options_the_broker_cannot_honour_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="quorum queues have no priorities"):
        RabbitMQChannel("orders", url="amqp://localhost/", max_priority=5)
    with pytest.raises(ConfigurationError, match="between 1 and 255"):
        RabbitMQChannel("orders", url="amqp://localhost/", queue_type="classic", max_priority=300)
    with pytest.raises(ConfigurationError, match="1 to 95 bytes"):
        RabbitMQChannel("x" * 96, url="amqp://localhost/")


def test_an_unreachable_broker_names_host_and_port_never_the_password() -> None:
    transport = RabbitMQTransport(
        f"amqp://app:{SECRET}@127.0.0.1:1/",
        clock=SystemClock(),
        connect_timeout=timedelta(milliseconds=300),
    )
    with pytest.raises(ConnectionFailed) as raised:
        transport.send("orders", WireMessage(b"x"))
    message = str(raised.value)
    assert "127.0.0.1:1" in message
    assert "user 'app'" in message
    assert SECRET not in message
    assert (raised.value.__cause__ is None and raised.value.__context__ is None) or (
        SECRET not in repr(raised.value.__context__)
    )
    transport.close()


def test_a_wrong_password_is_a_clear_error_without_the_password(amqp_url: str) -> None:
    transport = RabbitMQTransport(with_credentials(amqp_url, "guest", SECRET), clock=SystemClock())
    with pytest.raises(ConnectionFailed, match="refused the login of user 'guest'") as raised:
        transport.send("orders", WireMessage(b"x"))
    assert SECRET not in str(raised.value)
    transport.close()


def test_an_unknown_vhost_is_a_clear_error(amqp_url: str) -> None:
    url = with_credentials(amqp_url, "guest", "guest", vhost="no-such-vhost")
    transport = RabbitMQTransport(url, clock=SystemClock())
    with pytest.raises(ConnectionFailed, match="virtual host 'no-such-vhost'"):
        transport.send("orders", WireMessage(b"x"))
    transport.close()


def test_an_existing_queue_of_another_type_is_a_configuration_error(
    amqp_url: str, queue_names: Callable[[], str]
) -> None:
    name = queue_names()
    quorum = RabbitMQTransport(amqp_url, clock=SystemClock())
    quorum.send(name, WireMessage(b"x"))
    classic = RabbitMQTransport(amqp_url, clock=SystemClock(), queue_type="classic")
    with pytest.raises(ConfigurationError, match=f"queue '{name}' .* already exists"):
        classic.send(name, WireMessage(b"y"))
    classic.send(queue_names(), WireMessage(b"the connection is still usable"))
    quorum.close()
    classic.close()


def test_after_a_lost_connection_the_transport_reconnects_and_goes_on(
    proxy: TcpProxy, amqp_url: str, queue_names: Callable[[], str]
) -> None:
    channel = queue_names()
    transport = RabbitMQTransport(proxy.url, clock=SystemClock())
    transport.send(channel, WireMessage(b"first"))
    held = transport.receive(channel, lease=LEASE)[0]

    proxy.cut()
    transport.send(channel, WireMessage(b"second"))  # reconnects, declares again, sends

    with pytest.raises(StaleReceipt):
        transport.ack(held)  # its lease died with the connection...
    bodies = set()
    for _ in range(2):
        delivery = poll_receive(transport, channel, LEASE)
        bodies.add(delivery.message.body)
        transport.ack(delivery)
    assert bodies == {b"first", b"second"}  # ...and the broker delivered it again
    transport.close()


def test_a_broker_down_longer_than_reconnect_timeout_is_connection_failed(
    proxy: TcpProxy, queue_names: Callable[[], str]
) -> None:
    transport = RabbitMQTransport(
        proxy.url, clock=SystemClock(), reconnect_timeout=timedelta(milliseconds=500)
    )
    channel = queue_names()
    transport.send(channel, WireMessage(b"before"))
    proxy.refuse()
    proxy.cut()
    with pytest.raises(ConnectionFailed, match="could not reconnect") as raised:
        transport.send(channel, WireMessage(b"during"))
    assert f"127.0.0.1:{proxy.port}" in str(raised.value)

    proxy.refuse(False)  # the broker is back: the next call reconnects
    transport.send(channel, WireMessage(b"after"))
    transport.close()


def test_the_async_transport_reconnects_after_a_lost_connection(
    proxy: TcpProxy, queue_names: Callable[[], str]
) -> None:
    channel = queue_names()

    async def scenario() -> set[bytes]:
        transport = AsyncRabbitMQTransport(proxy.url, clock=SystemClock())
        await transport.send(channel, WireMessage(b"first"))
        held = (await transport.receive(channel, lease=LEASE))[0]
        proxy.cut()
        await transport.send(channel, WireMessage(b"second"))
        with pytest.raises(StaleReceipt):
            await transport.ack(held)
        bodies = set()
        for _ in range(2):
            found = await transport.receive(channel, lease=LEASE, wait=timedelta(seconds=5))
            bodies.add(found[0].message.body)
            await transport.ack(found[0])
        await transport.close()
        return bodies

    assert asyncio.run(scenario()) == {b"first", b"second"}


def test_the_async_transport_gives_the_same_clear_errors(amqp_url: str) -> None:
    async def scenario() -> tuple[str, str]:
        unreachable = AsyncRabbitMQTransport(
            f"amqp://app:{SECRET}@127.0.0.1:1/",
            clock=SystemClock(),
            connect_timeout=timedelta(milliseconds=300),
        )
        with pytest.raises(ConnectionFailed) as first:
            await unreachable.send("orders", WireMessage(b"x"))
        refused = AsyncRabbitMQTransport(
            with_credentials(amqp_url, "guest", SECRET), clock=SystemClock()
        )
        with pytest.raises(ConnectionFailed) as second:
            await refused.send("orders", WireMessage(b"x"))
        return str(first.value), str(second.value)

    unreachable, refused = asyncio.run(scenario())
    assert "127.0.0.1:1" in unreachable
    assert SECRET not in unreachable
    assert "refused the login of user 'guest'" in refused
    assert SECRET not in refused
