"""PostgreSQL restarted mid-flow: nothing committed is lost, calls during the outage fail with
``ConnectionFailed`` naming the server, and the same transport works again after the restart
without being reopened (its pool replaces the connections the restart broke).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from postgres_private_server import PrivateServer, private_server_or_skip
from postgres_support import Deadline

from conveyor.core.clock import VirtualClock
from conveyor.core.errors import ConnectionFailed
from conveyor.transports.seam import Delivery, WireMessage
from conveyor_postgres import AsyncPostgresTransport, PostgresTransport

LEASE = timedelta(seconds=30)
TIMEOUT = timedelta(seconds=1)


@pytest.fixture
def server() -> Iterator[PrivateServer]:
    private = private_server_or_skip()
    private.start(Deadline(30))
    yield private
    private.remove()


def _until_reconnected(receive: object, deadline: Deadline) -> list[Delivery]:
    """Receive until the server answers again (its restart may take a moment to be seen)."""
    while True:
        try:
            return receive()  # type: ignore[operator,no-any-return]
        except ConnectionFailed:
            deadline.remaining()


def test_a_restart_mid_flow_loses_nothing(server: PrivateServer) -> None:
    deadline = Deadline(40)
    clock = VirtualClock()
    transport = PostgresTransport(server.dsn, clock=clock, connect_timeout=TIMEOUT)
    bodies = [f"m-{n:02}".encode() for n in range(30)]
    for body in bodies:
        transport.send("jobs", WireMessage(body))
    done = transport.receive("jobs", lease=LEASE, max_messages=10)
    for delivery in done:
        transport.ack(delivery)
    in_flight = transport.receive("jobs", lease=LEASE, max_messages=5)  # leased when it stops

    server.stop()
    with pytest.raises(ConnectionFailed) as raised:
        transport.send("jobs", WireMessage(b"during the outage"))
    assert f"127.0.0.1:{server.port}" in str(raised.value)
    with pytest.raises(ConnectionFailed):
        transport.ack(in_flight[0])

    server.start(deadline)
    first = _until_reconnected(
        lambda: transport.receive("jobs", lease=LEASE, max_messages=100), deadline
    )
    for delivery in first:
        transport.ack(delivery)
    clock.advance(LEASE)  # the leases held across the restart run out
    rest = transport.receive("jobs", lease=LEASE, max_messages=100)
    for delivery in rest:
        transport.ack(delivery)
    received = first + rest

    assert sorted(d.message.body for d in [*done, *received]) == bodies
    assert {d.message.body for d in rest} == {d.message.body for d in in_flight}
    assert transport.pending("jobs") == 0
    transport.close()


def test_the_async_transport_survives_a_restart(server: PrivateServer) -> None:
    deadline = Deadline(40)
    clock = VirtualClock()

    async def scenario() -> list[bytes]:
        transport = AsyncPostgresTransport(server.dsn, clock=clock, connect_timeout=TIMEOUT)
        for n in range(10):
            await transport.send("jobs", WireMessage(f"m-{n}".encode()))
        server.stop()
        with pytest.raises(ConnectionFailed):
            await transport.receive("jobs", lease=LEASE)
        server.start(deadline)
        while True:
            try:
                found = await transport.receive("jobs", lease=LEASE, max_messages=100)
                break
            except ConnectionFailed:
                deadline.remaining()
        for delivery in found:
            await transport.ack(delivery)
        await transport.close()
        return sorted(d.message.body for d in found)

    assert asyncio.run(scenario()) == [f"m-{n}".encode() for n in range(10)]
