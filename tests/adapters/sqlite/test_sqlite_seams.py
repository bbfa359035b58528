"""The connection-level seam for a later outbox, and the package's curated public names."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import conveyor_sqlite
from conveyor.core.clock import VirtualClock
from conveyor.core.errors import ClockError
from conveyor.transports.seam import WireMessage
from conveyor_sqlite import (
    SqliteTransport,
    ensure_schema,
    from_unix_ms,
    insert_message,
    to_unix_ms,
)
from pytest_conveyor.conformance import receive_one


def application_connection(path: Path) -> sqlite3.Connection:
    """The application's own connection, with its own table next to Conveyor's."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    ensure_schema(connection)
    connection.execute("CREATE TABLE orders (id TEXT PRIMARY KEY)")
    connection.execute("COMMIT")
    return connection


def test_a_message_inserted_in_a_rolled_back_transaction_is_never_sent(
    db_path: Path, transport: SqliteTransport, clock: VirtualClock
) -> None:
    application = application_connection(db_path)
    now_ms = to_unix_ms(clock.now())

    application.execute("BEGIN IMMEDIATE")
    application.execute("INSERT INTO orders VALUES ('o-1')")
    insert_message(application, "orders", WireMessage(b"placed o-1"), now_ms)
    application.execute("ROLLBACK")

    assert transport.pending("orders") == 0

    application.execute("BEGIN IMMEDIATE")
    application.execute("INSERT INTO orders VALUES ('o-2')")
    row_id = insert_message(
        application,
        "orders",
        WireMessage(b"placed o-2", {"id": "m-2"}),
        now_ms + 500,
        priority=2,
        expires_at_ms=now_ms + 60_000,
    )
    assert transport.pending("orders") == 0  # not committed yet
    application.execute("COMMIT")
    application.close()

    assert receive_one(transport, "orders", lease=timedelta(seconds=1)) is None
    clock.advance(timedelta(milliseconds=500))
    delivery = receive_one(transport, "orders", lease=timedelta(seconds=1))
    assert delivery is not None
    assert delivery.message == WireMessage(b"placed o-2", {"id": "m-2"})
    assert delivery.receipt.startswith(f"{row_id}:")


def test_instants_are_stored_as_unix_milliseconds_rounding_never_early() -> None:
    instant = datetime(2026, 1, 1, 0, 0, 0, 1_500, tzinfo=UTC)

    assert to_unix_ms(instant) == 1_767_225_600_001
    assert to_unix_ms(instant, round_up=True) == 1_767_225_600_002
    assert from_unix_ms(1_767_225_600_002) == datetime(2026, 1, 1, 0, 0, 0, 2_000, tzinfo=UTC)
    with pytest.raises(ClockError, match="has no timezone"):
        to_unix_ms(datetime(2026, 1, 1))


def test_the_public_names_are_curated_and_importable() -> None:
    assert conveyor_sqlite.__all__ == [
        "SqliteChannel",
        "SqliteTransport",
        "AsyncSqliteTransport",
        "SqliteDeadLetterStore",
        "SqliteDeduplication",
        "SqliteScheduleStore",
        "SqliteQuarantine",
        "QuarantinedRow",
        "Synchronous",
        "sqlite_transaction",
        "insert_message",
        "contains_key",
        "add_key",
        "ensure_schema",
        "SCHEMA_VERSION",
        "to_unix_ms",
        "from_unix_ms",
    ]
    for name in conveyor_sqlite.__all__:
        assert getattr(conveyor_sqlite, name) is not None


def test_importing_the_adapter_imports_no_sqlite_and_opens_nothing(tmp_path: Path) -> None:
    code = "import sys, conveyor_sqlite; print('sqlite3' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.strip() == "False"
    assert list(tmp_path.iterdir()) == []
