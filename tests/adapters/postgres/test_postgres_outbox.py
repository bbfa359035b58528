"""The outbox: messages sent inside the application's PostgreSQL transaction leave only if it
commits, through psycopg or a SQLAlchemy session, and move on after commit even when the relay
(the outbox's consumer) dies holding one."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from postgres_support import Deadline

from conveyor import (
    Context,
    Messaging,
    SystemClock,
    VirtualClock,
    asynchronous,
    command_handler,
    event_handler,
)
from conveyor.transports.seam import WireMessage
from conveyor_postgres import PostgresChannel, PostgresTransport, postgres_transaction


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str


class Boom(Exception):
    """The application's failure after it sent, which must take the message with it."""


class Shop:
    """Writes the order row through the application's connection and publishes OrderPlaced."""

    def __init__(self, execute: Any, schema: str) -> None:
        self.execute = execute
        self.schema = schema
        self.notified: list[str] = []

    @command_handler
    def place(self, command: PlaceOrder, ctx: Context) -> None:
        self.execute(f"INSERT INTO {self.schema}.orders VALUES (%s)", (command.order_id,))
        ctx.publish(OrderPlaced(command.order_id))

    @asynchronous("outbox", "orders")
    @event_handler
    def notify(self, event: OrderPlaced) -> None:
        self.notified.append(event.order_id)


def shop_messaging(
    dsn: str, schema: str, shop: Shop, connection: object, **options: Any
) -> Messaging:
    return Messaging(
        handlers=[shop],
        channels=[
            PostgresChannel("outbox", dsn=dsn, schema=schema, connection=connection),
            PostgresChannel("orders", dsn=dsn, schema=schema, lease=timedelta(seconds=1)),
        ],
        **{"clock": VirtualClock(), **options},
    )


def committed(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    """What another connection sees: committed rows only."""
    with psycopg.connect(dsn) as observer:
        return observer.execute(sql).fetchall()  # type: ignore[arg-type]


def stored(dsn: str, schema: str, channel: str) -> int:
    sql = f"SELECT count(*) FROM {schema}.messages WHERE channel = '{channel}'"
    return int(committed(dsn, sql)[0][0])


def orders(dsn: str, schema: str) -> list[str]:
    return [row[0] for row in committed(dsn, f"SELECT id FROM {schema}.orders ORDER BY id")]


@pytest.fixture
def app(dsn: str, schema: str) -> Iterator[psycopg.Connection[Any]]:
    """The application's own psycopg connection (autocommit; transactions are explicit)."""
    connection = psycopg.connect(dsn, autocommit=True)
    PostgresTransport(dsn, clock=VirtualClock(), schema=schema).close()  # the schema exists
    connection.execute(f"CREATE TABLE {schema}.orders (id text PRIMARY KEY)")
    yield connection
    connection.close()


# --- psycopg --------------------------------------------------------------------------------


def test_a_committed_message_waits_in_the_outbox_then_moves_on(
    dsn: str, schema: str, app: psycopg.Connection[Any]
) -> None:
    shop = Shop(app.execute, schema)
    messaging = shop_messaging(dsn, schema, shop, app)

    with app.transaction():
        messaging.send(PlaceOrder("o-1"))
        assert stored(dsn, schema, "outbox") == 0  # invisible before the application commits

    assert orders(dsn, schema) == ["o-1"]
    assert stored(dsn, schema, "outbox") == 1
    assert messaging.run("outbox").processed == 1
    assert (stored(dsn, schema, "outbox"), stored(dsn, schema, "orders")) == (0, 1)
    assert messaging.run("orders").processed == 1
    assert shop.notified == ["o-1"]
    messaging.close()


def test_a_rollback_sends_nothing(dsn: str, schema: str, app: psycopg.Connection[Any]) -> None:
    shop = Shop(app.execute, schema)
    messaging = shop_messaging(dsn, schema, shop, app)

    def place_then_fail() -> None:
        with app.transaction():
            messaging.send(PlaceOrder("o-1"))
            raise Boom

    with pytest.raises(Boom):
        place_then_fail()

    assert orders(dsn, schema) == []
    assert stored(dsn, schema, "outbox") == 0
    messaging.run_until_idle(advance_time=True)
    assert shop.notified == []
    messaging.close()


def test_postgres_transaction_wraps_each_unit_of_work(
    dsn: str, schema: str, app: psycopg.Connection[Any]
) -> None:
    """With ``transaction=``, a top-level send commits the row and the message together."""
    shop = Shop(app.execute, schema)
    messaging = shop_messaging(dsn, schema, shop, app, transaction=postgres_transaction(app))

    messaging.send(PlaceOrder("o-1"))
    assert app.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert orders(dsn, schema) == ["o-1"]
    assert stored(dsn, schema, "outbox") == 1

    with pytest.raises(psycopg.errors.UniqueViolation):
        messaging.send(PlaceOrder("o-1"))  # the row fails after nothing else: all rolled back
    assert stored(dsn, schema, "outbox") == 1
    messaging.close()


def test_without_a_transaction_the_message_is_committed_at_once(
    dsn: str, schema: str, app: psycopg.Connection[Any]
) -> None:
    shop = Shop(app.execute, schema)
    messaging = shop_messaging(dsn, schema, shop, app)

    messaging.send(PlaceOrder("o-1"))  # autocommit connection, no transaction open

    assert stored(dsn, schema, "outbox") == 1
    messaging.close()


def test_a_waiting_consumer_wakes_at_commit_not_before(
    dsn: str, schema: str, app: psycopg.Connection[Any]
) -> None:
    """NOTIFY is transactional: the long poll sees the message when, and only when, it commits."""
    clock = SystemClock()
    outbox = PostgresTransport(dsn, clock=clock, schema=schema, connection=app)
    consumer = PostgresTransport(dsn, clock=clock, schema=schema)
    with app.transaction():
        outbox.send("outbox", WireMessage(b"m"))
        assert consumer.receive("outbox", lease=timedelta(seconds=5)) == []
    started = clock.now()
    found = consumer.receive("outbox", lease=timedelta(seconds=5), wait=timedelta(seconds=5))
    assert [d.message.body for d in found] == [b"m"]
    assert clock.now() - started < timedelta(seconds=1)
    outbox.close()
    consumer.close()


# --- SQLAlchemy -----------------------------------------------------------------------------


@pytest.fixture
def engine(dsn: str, app: psycopg.Connection[Any]) -> Iterator[Any]:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    url = sqlalchemy.engine.make_url(dsn).set(drivername="postgresql+psycopg")
    engine = sqlalchemy.create_engine(url)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_a_sqlalchemy_session_carries_the_outbox(
    dsn: str, schema: str, engine: Any, outcome: str
) -> None:
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    with Session(engine) as session:

        def execute(sql: str, params: tuple[str]) -> None:
            session.execute(text(sql.replace("%s", ":id")), {"id": params[0]})

        shop = Shop(execute, schema)
        messaging = shop_messaging(dsn, schema, shop, session)
        with session.begin():
            messaging.send(PlaceOrder("o-1"))
            if outcome == "rollback":
                session.rollback()

    expected = (["o-1"], 1) if outcome == "commit" else ([], 0)
    assert (orders(dsn, schema), stored(dsn, schema, "outbox")) == expected
    messaging.close()


def test_a_sqlalchemy_session_sending_first_still_joins_its_transaction(
    dsn: str, schema: str, engine: Any
) -> None:
    """A session that has begun but run no statement yet still holds the message."""
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        messaging = shop_messaging(dsn, schema, Shop(lambda *_: None, schema), session)

        def publish_then_fail() -> None:
            with session.begin():
                messaging.publish(OrderPlaced("o-1"))
                raise Boom

        with pytest.raises(Boom):
            publish_then_fail()

    assert stored(dsn, schema, "outbox") == 0
    messaging.close()


# --- the relay killed -----------------------------------------------------------------------

RELAY = """
import sys
from datetime import timedelta
from conveyor.core.clock import SystemClock
from conveyor_postgres import PostgresTransport

transport = PostgresTransport(sys.argv[1], clock=SystemClock(), schema=sys.argv[2])
held = transport.receive("outbox", lease=timedelta(milliseconds=500), wait=timedelta(seconds=10))
print("HOLDING", len(held), flush=True)
sys.stdin.read()  # blocks until the test kills this relay
"""


def test_a_relay_killed_holding_a_committed_message_loses_it_not_and_sends_no_rollback(
    dsn: str, schema: str, app: psycopg.Connection[Any]
) -> None:
    deadline = Deadline(30)
    shop = Shop(app.execute, schema)
    messaging = shop_messaging(dsn, schema, shop, app, clock=SystemClock())
    with app.transaction():
        messaging.send(PlaceOrder("o-1"))

    def place_then_fail() -> None:
        with app.transaction():
            messaging.send(PlaceOrder("o-2"))
            raise Boom("the application fails after sending: o-2 must not leave")

    with pytest.raises(Boom):
        place_then_fail()

    relay = subprocess.Popen(
        [sys.executable, "-c", RELAY, dsn, schema],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert relay.stdout is not None
        assert relay.stdout.readline().strip() == "HOLDING 1"
        relay.kill()
        assert relay.wait(timeout=deadline.remaining()) == -9
    finally:
        if relay.poll() is None:
            relay.kill()

    # The lease (500 ms) runs out; the next relay moves the committed message on, once.
    moved = messaging.run("outbox", limit=1, time_limit=timedelta(seconds=deadline.remaining()))
    assert moved.processed == 1
    assert messaging.run("orders", finish_when_empty=True).processed == 1
    assert shop.notified == ["o-1"]  # the committed one moved on once, the rolled back never
    assert orders(dsn, schema) == ["o-1"]
    assert stored(dsn, schema, "outbox") == 0
    assert messaging.run("outbox", finish_when_empty=True).processed == 0
    messaging.close()
