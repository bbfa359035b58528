"""A wrong password is refused with a clear error that never shows it (a server of its own).

The shared server of ``scripts/test`` trusts every local connection, so it accepts any
password; this test starts a private cluster, sets a password, switches its TCP connections to
SCRAM (a reload of ``pg_hba.conf``), then connects with the wrong password and the right one.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator

import psycopg
import pytest
from postgres_private_server import PrivateServer, private_server_or_skip
from postgres_support import Deadline

from conveyor.core.clock import VirtualClock
from conveyor.core.errors import ConnectionFailed
from conveyor_postgres import AsyncPostgresTransport, PostgresTransport

RIGHT, WRONG = "the-r1ght-one", "s3cr3t-Wr0ng"


@pytest.fixture(scope="module")
def server() -> Iterator[PrivateServer]:
    server = private_server_or_skip()
    try:
        require_a_password(server, Deadline(60))
        yield server
    finally:
        server.remove()  # stops the server even when the setup failed half way


def require_a_password(server: PrivateServer, deadline: Deadline) -> None:
    server.start(deadline)
    with psycopg.connect(server.dsn) as trusted:
        trusted.execute(f"ALTER ROLE postgres PASSWORD '{RIGHT}'")
    (server.directory / "data" / "pg_hba.conf").write_text(
        "local all all trust\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
        "host all all ::1/128 scram-sha-256\n"
    )
    assert server.process is not None
    server.process.send_signal(signal.SIGHUP)  # reload pg_hba.conf
    while True:  # the reload is asynchronous: wait until a password is required
        try:
            psycopg.connect(server.dsn, connect_timeout=2).close()
        except psycopg.OperationalError:
            return
        deadline.remaining()


def dsn_with(server: PrivateServer, password: str) -> str:
    return f"postgresql://postgres:{password}@127.0.0.1:{server.port}/postgres"


def test_a_wrong_password_is_refused_naming_the_server_not_the_password(
    server: PrivateServer,
) -> None:
    with pytest.raises(ConnectionFailed, match="refused the credentials") as raised:
        PostgresTransport(dsn_with(server, WRONG), clock=VirtualClock())
    message = str(raised.value)
    assert f"127.0.0.1:{server.port}" in message
    assert "user 'postgres'" in message
    assert WRONG not in message
    assert WRONG not in repr(raised.value.__cause__ or "")

    right = PostgresTransport(dsn_with(server, RIGHT), clock=VirtualClock())  # the control
    right.close()


def test_the_async_transport_refuses_a_wrong_password_the_same_way(
    server: PrivateServer,
) -> None:
    async def scenario() -> str:
        transport = AsyncPostgresTransport(dsn_with(server, WRONG), clock=VirtualClock())
        try:
            with pytest.raises(ConnectionFailed, match="refused the credentials") as raised:
                await transport.pending("jobs")
        finally:
            await transport.close()
        return str(raised.value)

    message = asyncio.run(scenario())
    assert f"127.0.0.1:{server.port}" in message
    assert WRONG not in message
