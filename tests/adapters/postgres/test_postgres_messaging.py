"""The shop's kind of flow through ``Messaging`` on PostgreSQL channels, on the system clock.

A command writes an order in the application's transaction and publishes an event through the
outbox; an asynchronous handler fails once and is retried after a delay; another always fails
and ends in the PostgreSQL dead-letter store, from which it is replayed. Consumers are driven
the way production drives them, with ``run(name, finish_when_empty=True)`` and ``limit=``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from conveyor import (
    Backoff,
    Context,
    Messaging,
    RetryPolicy,
    SystemClock,
    asynchronous,
    command_handler,
    event_handler,
)
from conveyor_postgres import PostgresChannel, PostgresDeadLetterStore, postgres_transaction


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str
    customer: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str
    customer: str


class MailServerBusy(TimeoutError):
    pass


class WarehouseDown(ConnectionError):
    pass


class Shop:
    def __init__(self, connection: psycopg.Connection[Any], schema: str) -> None:
        self.db = connection
        self.schema = schema
        self.mail_failures_left = 1
        self.mailed: list[str] = []
        self.warehouse_up = False
        self.reserved: list[str] = []

    @command_handler
    def place(self, command: PlaceOrder, ctx: Context) -> None:
        self.db.execute(
            f"INSERT INTO {self.schema}.orders VALUES (%s, %s)",
            (command.order_id, command.customer),
        )
        ctx.publish(OrderPlaced(command.order_id, command.customer))

    @asynchronous("outbox", "notifications")
    @event_handler
    def confirm(self, event: OrderPlaced) -> None:
        if self.mail_failures_left > 0:
            self.mail_failures_left -= 1
            raise MailServerBusy("mail server timed out")
        self.mailed.append(event.customer)

    @asynchronous("outbox", "warehouse")
    @event_handler
    def reserve(self, event: OrderPlaced) -> None:
        if not self.warehouse_up:
            raise WarehouseDown("warehouse: connection refused")
        self.reserved.append(event.order_id)


@pytest.fixture
def app(dsn: str, schema: str) -> Iterator[psycopg.Connection[Any]]:
    connection = psycopg.connect(dsn, autocommit=True)
    connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    connection.execute(f"CREATE TABLE {schema}.orders (id text PRIMARY KEY, customer text)")
    yield connection
    connection.close()


def test_the_shop_flow_runs_on_postgres_channels(
    dsn: str, schema: str, app: psycopg.Connection[Any]
) -> None:
    shop = Shop(app, schema)
    quick = RetryPolicy(delays=Backoff.fixed(timedelta(milliseconds=100)), attempts=2)
    dead_letters = PostgresDeadLetterStore(dsn, schema=schema)
    channels = [
        PostgresChannel("outbox", dsn=dsn, schema=schema, connection=app),
        PostgresChannel("notifications", dsn=dsn, schema=schema, retry=quick),
        PostgresChannel("warehouse", dsn=dsn, schema=schema, retry=quick),
    ]
    messaging = Messaging(
        handlers=[shop],
        channels=channels,
        clock=SystemClock(),
        dead_letters=dead_letters,
        transaction=postgres_transaction(app),
        log_failures=False,
    )

    messaging.send(PlaceOrder("o-1", "ada@example.com"))
    messaging.send(PlaceOrder("o-2", "bob@example.com"))

    # The outbox moves both events on, one copy per asynchronous handler.
    assert messaging.run("outbox", finish_when_empty=True).processed == 4
    # The mailer fails once, so one message comes back 100 ms later: wait for it with a limit.
    assert messaging.run("notifications", limit=3, time_limit=timedelta(seconds=10)).processed == 3
    assert sorted(shop.mailed) == ["ada@example.com", "bob@example.com"]
    # The warehouse always fails: two attempts each, then the dead-letter store.
    messaging.run("warehouse", limit=4, time_limit=timedelta(seconds=10))
    assert dead_letters.count() == 2
    letters = dead_letters.list()
    assert {letter.exception_type for letter in letters} == {f"{__name__}.WarehouseDown"}
    assert all(letter.attempts == 2 for letter in letters)

    shop.warehouse_up = True
    messaging.dead_letters.replay_all()
    assert messaging.run("warehouse", finish_when_empty=True).processed == 2
    assert sorted(shop.reserved) == ["o-1", "o-2"]
    assert dead_letters.count() == 0
    messaging.close()
    dead_letters.close()


def test_channels_on_one_server_share_one_transport(dsn: str, schema: str) -> None:
    channels = [PostgresChannel(name, dsn=dsn, schema=schema) for name in ("a", "b", "c")]
    assert len({channel.transport_key() for channel in channels}) == 1
    other = PostgresChannel("d", dsn=dsn, schema=schema, max_connections=3)
    assert other.transport_key() != channels[0].transport_key()
