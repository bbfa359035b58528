"""Deduplication inside the handler's transaction, on PostgreSQL.

With ``PostgresDeduplication(dsn, connection=app)`` and ``Messaging(transaction=
postgres_transaction(app))`` the kernel writes the key through ``app``, after the handler and
before the commit: a process that dies after the commit leaves the key with the effect, and the
redelivery is acknowledged as a duplicate. Without ``connection=`` the key is written after the
commit, and a death in between runs the effect twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from conveyor import (
    Deduplication,
    Messaging,
    RecordKind,
    RetryPolicy,
    SystemClock,
    around,
    asynchronous,
    command_handler,
)
from conveyor.drivers.stack import StackOrder
from conveyor_postgres import PostgresChannel, PostgresDeduplication, postgres_transaction


@dataclass(frozen=True)
class Ship:
    order_id: str


class DiedAfterCommit(Exception):
    """Stands for a process killed between the handler's commit and the key's own write."""


@pytest.fixture
def app(dsn: str, schema: str) -> Iterator[psycopg.Connection[Any]]:
    connection = psycopg.connect(dsn, autocommit=True)
    connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    connection.execute(f"CREATE TABLE {schema}.shipped (order_id text NOT NULL)")
    yield connection
    connection.close()


def run_once_killed_after_commit(
    dsn: str, schema: str, app: psycopg.Connection[Any], *, in_transaction: bool
) -> Messaging:
    @asynchronous("orders", retry=RetryPolicy(delays=[timedelta(milliseconds=10)], attempts=3))
    @command_handler(endpoint_id="ship")
    def ship(command: Ship) -> None:
        app.execute(f"INSERT INTO {schema}.shipped VALUES (%s)", (command.order_id,))

    died: list[str] = []

    @around(order=StackOrder.TRANSACTION - 1)  # outside the transaction: after its commit
    def die_once_after_commit(proceed: Callable[[], object], message: object) -> object:
        result = proceed()
        if not died:
            died.append("once")
            raise DiedAfterCommit("killed after the commit")
        return result

    keys = PostgresDeduplication(dsn, schema=schema, connection=app if in_transaction else None)
    messaging = Messaging(
        handlers=[ship],
        channels=[PostgresChannel("orders", dsn=dsn, schema=schema)],
        clock=SystemClock(),
        transaction=postgres_transaction(app),
        deduplication=Deduplication(store=keys),
        interceptors=[die_once_after_commit],
        log_failures=False,
    )
    messaging.send(Ship("o-1"))
    messaging.run("orders", limit=2, time_limit=timedelta(seconds=10))
    keys.close()
    return messaging


def shipped(app: psycopg.Connection[Any], schema: str) -> list[str]:
    return [row[0] for row in app.execute(f"SELECT order_id FROM {schema}.shipped").fetchall()]


def test_the_key_commits_with_the_effect_so_a_redelivery_is_a_duplicate(
    dsn: str, schema: str, app: psycopg.Connection[Any]
) -> None:
    messaging = run_once_killed_after_commit(dsn, schema, app, in_transaction=True)

    assert shipped(app, schema) == ["o-1"]
    assert len(messaging.journal.of_kind(RecordKind.DUPLICATE)) == 1
    messaging.close()


def test_a_store_with_its_own_transactions_leaves_a_window_after_the_commit(
    dsn: str, schema: str, app: psycopg.Connection[Any]
) -> None:
    messaging = run_once_killed_after_commit(dsn, schema, app, in_transaction=False)

    assert shipped(app, schema) == ["o-1", "o-1"]  # the documented duplicate
    messaging.close()
