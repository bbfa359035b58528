"""Bad DSNs, wrong credentials, an unreachable server and schema versions give clear errors.

Every message names host, port and database, says how to fix it, and never shows the password.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import psycopg
import pytest
from postgres_support import unique

from conveyor import Messaging
from conveyor.core.clock import SystemClock, VirtualClock
from conveyor.core.errors import ConfigurationError, ConnectionFailed, TransportClosed
from conveyor.transports.seam import WireMessage
from conveyor_postgres import (
    SCHEMA_VERSION,
    AsyncPostgresTransport,
    PostgresChannel,
    PostgresDeadLetterStore,
    PostgresTransport,
)

SECRET = "s3cr3t-Pa55"


def _with(dsn: str, **parts: str) -> str:
    """``dsn`` with some of its parts replaced (user, password, port, dbname)."""
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    info.update(parts)
    return psycopg.conninfo.make_conninfo("", **info)


def test_unreachable_port_names_host_port_and_database_but_not_the_password(dsn: str) -> None:
    bad = _with(dsn, port="1", password=SECRET)
    with pytest.raises(ConnectionFailed) as raised:
        PostgresTransport(bad, clock=VirtualClock(), connect_timeout=timedelta(seconds=2))
    message = str(raised.value)
    assert ":1, database 'app'" in message
    assert "check that the server runs" in message
    assert SECRET not in message
    assert SECRET not in repr(raised.value.__cause__ or "")


def test_unknown_role_says_so_without_the_password(dsn: str) -> None:
    bad = _with(dsn, user="nobody_here", password=SECRET)
    with pytest.raises(ConnectionFailed, match="no such role") as raised:
        PostgresTransport(bad, clock=VirtualClock())
    assert "user 'nobody_here'" in str(raised.value)
    assert SECRET not in str(raised.value)


def test_missing_database_says_so(dsn: str) -> None:
    bad = _with(dsn, dbname="no_such_database")
    with pytest.raises(ConnectionFailed, match="does not exist") as raised:
        PostgresTransport(bad, clock=VirtualClock())
    assert "no_such_database" in str(raised.value)


@pytest.mark.parametrize(
    "bad",
    [
        f"postgresql://app:{SECRET}@127.0.0.1:15432/app?bogus_option=1",
        f"password={SECRET} nonsense",
    ],
)
def test_malformed_dsn_is_a_configuration_error_without_the_password(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="DSN is not valid") as raised:
        PostgresTransport(bad, clock=VirtualClock())
    assert SECRET not in str(raised.value)


def test_channel_without_dsn_is_refused_when_defined() -> None:
    with pytest.raises(ConfigurationError, match="needs dsn="):
        PostgresChannel("orders", dsn="")


def test_channel_repr_hides_the_password(dsn: str) -> None:
    channel = PostgresChannel("orders", dsn=_with(dsn, password=SECRET))
    assert SECRET not in repr(channel)
    assert "127.0.0.1" in repr(channel)


def test_bad_schema_name_is_refused(dsn: str) -> None:
    with pytest.raises(ConfigurationError, match="not a plain PostgreSQL identifier"):
        PostgresTransport(dsn, clock=VirtualClock(), schema="Robert'); DROP TABLE x;--")


def test_messaging_with_an_unreachable_server_fails_at_bootstrap(dsn: str) -> None:
    channel = PostgresChannel(
        "orders", dsn=_with(dsn, port="1"), connect_timeout=timedelta(seconds=1)
    )
    with pytest.raises(ConnectionFailed, match=":1"):
        Messaging(channels=[channel], clock=SystemClock())


def test_async_transport_reports_an_unreachable_server_on_first_use(dsn: str) -> None:
    import asyncio

    transport = AsyncPostgresTransport(_with(dsn, port="1", password=SECRET), clock=SystemClock())

    async def use() -> None:
        await transport.send("orders", WireMessage(b"x"))

    with pytest.raises(ConnectionFailed) as raised:
        asyncio.run(use())
    assert ":1, database 'app'" in str(raised.value)
    assert SECRET not in str(raised.value)


class TestSchemaVersions:
    """Each test gets its own PostgreSQL schema, dropped afterwards."""

    @pytest.fixture
    def schema(self, dsn: str):  # type: ignore[no-untyped-def]
        name = unique("cv_schema")
        yield name
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")

    def _set_version(self, dsn: str, schema: str, version: int) -> None:
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(f"UPDATE {schema}.schema_version SET version = %s", (version,))

    def test_schema_is_created_on_first_use_with_its_version(self, dsn: str, schema: str) -> None:
        PostgresTransport(dsn, clock=VirtualClock(), schema=schema).close()
        with psycopg.connect(dsn) as connection:
            row = connection.execute(f"SELECT version FROM {schema}.schema_version").fetchone()
        assert row == (SCHEMA_VERSION,)

    def test_newer_schema_is_refused_and_left_alone(self, dsn: str, schema: str) -> None:
        PostgresTransport(dsn, clock=VirtualClock(), schema=schema).close()
        self._set_version(dsn, schema, SCHEMA_VERSION + 1)

        with pytest.raises(ConfigurationError, match="newer release") as raised:
            PostgresTransport(dsn, clock=VirtualClock(), schema=schema)
        assert f"version {SCHEMA_VERSION + 1}" in str(raised.value)
        with psycopg.connect(dsn) as connection:
            row = connection.execute(f"SELECT version FROM {schema}.schema_version").fetchone()
        assert row == (SCHEMA_VERSION + 1,)

    def test_older_schema_without_create_names_the_migrate_command(
        self, dsn: str, schema: str
    ) -> None:
        PostgresTransport(dsn, clock=VirtualClock(), schema=schema).close()
        self._set_version(dsn, schema, SCHEMA_VERSION - 1)

        with pytest.raises(ConfigurationError, match="python -m conveyor_postgres migrate"):
            PostgresDeadLetterStore(dsn, schema=schema, create_schema=False)

    def test_missing_schema_without_create_is_refused(self, dsn: str, schema: str) -> None:
        with pytest.raises(ConfigurationError, match="version 0"):
            PostgresTransport(dsn, clock=VirtualClock(), schema=schema, create_schema=False)

    def test_migrate_command_creates_then_finds_nothing_to_do(self, dsn: str, schema: str) -> None:
        command = [sys.executable, "-m", "conveyor_postgres", "migrate", "--dsn", dsn]
        first = subprocess.run(
            [*command, "--schema", schema], capture_output=True, text=True, check=False
        )
        second = subprocess.run(
            [*command, "--schema", schema], capture_output=True, text=True, check=False
        )

        assert first.returncode == 0, first.stderr
        assert f"migrated from version 0 to {SCHEMA_VERSION}" in first.stdout
        assert "nothing to do" in second.stdout
        PostgresTransport(dsn, clock=VirtualClock(), schema=schema, create_schema=False).close()

    def test_migrate_command_reports_a_bad_server_without_the_password(self, dsn: str) -> None:
        bad = _with(dsn, port="1", password=SECRET)
        result = subprocess.run(
            [sys.executable, "-m", "conveyor_postgres", "migrate", "--dsn", bad],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 1
        assert ":1, database 'app'" in result.stderr
        assert SECRET not in result.stderr + result.stdout


def test_closed_store_refuses_use(dsn: str) -> None:
    store = PostgresDeadLetterStore(dsn)
    store.close()
    store.close()
    with pytest.raises(TransportClosed):
        store.count()
