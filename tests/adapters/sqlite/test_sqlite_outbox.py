"""The outbox: messages sent inside the application's SQLite transaction leave only if it commits.

Every test uses a real database file, the application's own ``sqlite3`` connection with an
``orders`` table next to Conveyor's, and a ``VirtualClock``. Both ``isolation_level`` styles of
Python's ``sqlite3`` are covered: the default (an implicit ``BEGIN`` before the first write,
committed by ``with conn:``) and ``None`` (explicit ``BEGIN`` and ``COMMIT``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from conveyor import (
    Context,
    Deduplication,
    Messaging,
    QueueChannel,
    RecordKind,
    RetryPolicy,
    SequentialIds,
    VirtualClock,
    asynchronous,
    command_handler,
    event_handler,
)
from conveyor.core.errors import (
    ConfigurationError,
    ConnectionFailed,
    TransportClosed,
    TransportError,
)
from conveyor.transports.seam import WireMessage
from conveyor_sqlite import SqliteChannel, SqliteDeduplication, SqliteTransport, sqlite_transaction


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str


@dataclass(frozen=True)
class OrderPlaced:
    order_id: str


class Boom(Exception):
    """The application's failure after it sent, which must take the message with it."""


Transaction = Callable[[sqlite3.Connection], AbstractContextManager[object]]


@contextmanager
def with_conn(connection: sqlite3.Connection) -> Iterator[None]:
    """Default isolation: ``with conn:`` commits, or rolls back if the block raises."""
    with connection:
        yield


@contextmanager
def explicit(connection: sqlite3.Connection) -> Iterator[None]:
    """``isolation_level=None``: the application begins and ends its transactions itself."""
    connection.execute("BEGIN")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def connect_default(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path)


def connect_autocommit(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


Style = tuple[Callable[[Path], sqlite3.Connection], Transaction]
STYLES: dict[str, Style] = {
    "default isolation, with conn": (connect_default, with_conn),
    "isolation_level=None": (connect_autocommit, explicit),
}


@pytest.fixture(params=list(STYLES))
def style(request: pytest.FixtureRequest) -> Style:
    return STYLES[request.param]


@pytest.fixture
def conn(db_path: Path, style: Style) -> Iterator[sqlite3.Connection]:
    connection = style[0](db_path)
    connection.execute("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY)")
    yield connection
    connection.close()


@pytest.fixture
def transaction(style: Style) -> Transaction:
    return style[1]


class Shop:
    """Writes the order row through the application's connection and publishes OrderPlaced."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.notified: list[str] = []

    @command_handler
    def place(self, command: PlaceOrder, ctx: Context) -> None:
        self.connection.execute("INSERT INTO orders VALUES (?)", (command.order_id,))
        ctx.publish(OrderPlaced(command.order_id))

    @asynchronous("outbox", "orders")
    @event_handler
    def notify(self, event: OrderPlaced) -> None:
        self.notified.append(event.order_id)


def shop_messaging(
    db_path: Path, conn: sqlite3.Connection, shop: Shop, **options: object
) -> Messaging:
    return Messaging(
        handlers=[shop],
        channels=[
            SqliteChannel("outbox", path=db_path, connection=conn),
            SqliteChannel("orders", path=db_path),
        ],
        clock=VirtualClock(),
        ids=SequentialIds(),
        **options,  # type: ignore[arg-type]
    )


def rows(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    """What another process would see: only committed rows."""
    with sqlite3.connect(db_path) as observer:
        return observer.execute(sql).fetchall()


def stored(db_path: Path, channel: str) -> int:
    found = rows(db_path, f"SELECT COUNT(*) FROM conveyor_messages WHERE channel = '{channel}'")
    return int(str(found[0][0]))


def orders(db_path: Path) -> list[str]:
    return [str(row[0]) for row in rows(db_path, "SELECT id FROM orders ORDER BY id")]


# --- commit and rollback --------------------------------------------------------------------


def test_a_committed_message_waits_in_the_outbox_then_moves_on_to_its_handler(
    db_path: Path, conn: sqlite3.Connection, transaction: Transaction
) -> None:
    shop = Shop(conn)
    messaging = shop_messaging(db_path, conn, shop)

    with transaction(conn):
        messaging.send(PlaceOrder("o-1"))
        assert stored(db_path, "outbox") == 0  # not visible before the application commits

    assert orders(db_path) == ["o-1"]
    assert stored(db_path, "outbox") == 1
    assert shop.notified == []

    assert messaging.run("outbox").processed == 1
    assert (stored(db_path, "outbox"), stored(db_path, "orders")) == (0, 1)
    assert messaging.run("orders").processed == 1
    assert shop.notified == ["o-1"]
    forwarded = messaging.journal.of_kind(RecordKind.FORWARDED)
    assert [(r.message_id, r.channel, r.detail) for r in forwarded] == [
        ("msg-2", "orders", "from outbox")
    ]
    messaging.close()


def test_a_rollback_sends_nothing_and_the_handler_never_runs(
    db_path: Path, conn: sqlite3.Connection, transaction: Transaction
) -> None:
    shop = Shop(conn)
    messaging = shop_messaging(db_path, conn, shop)

    def place_then_fail() -> None:
        with transaction(conn):
            messaging.send(PlaceOrder("o-1"))
            raise Boom

    with pytest.raises(Boom):
        place_then_fail()

    assert conn.in_transaction is False
    assert orders(db_path) == []
    assert stored(db_path, "outbox") == 0
    messaging.run_until_idle(advance_time=True)
    assert shop.notified == []
    messaging.close()


def test_the_business_row_and_the_outbox_row_commit_together_or_not_at_all(
    db_path: Path, conn: sqlite3.Connection, transaction: Transaction
) -> None:
    shop = Shop(conn)
    messaging = shop_messaging(db_path, conn, shop)
    with transaction(conn):
        messaging.send(PlaceOrder("o-1"))

    # The second order's row is written, its event is in the outbox, then the application's
    # next statement fails: the whole transaction goes, the first order stays.
    def place_then_write_a_duplicate() -> None:
        with transaction(conn):
            messaging.send(PlaceOrder("o-2"))
            conn.execute("INSERT INTO orders VALUES ('o-1')")

    with pytest.raises(sqlite3.IntegrityError):
        place_then_write_a_duplicate()

    assert orders(db_path) == ["o-1"]
    assert stored(db_path, "outbox") == 1
    messaging.run_until_idle()
    assert shop.notified == ["o-1"]
    messaging.close()


def test_a_message_published_by_the_application_itself_joins_its_transaction(
    db_path: Path, conn: sqlite3.Connection, transaction: Transaction
) -> None:
    shop = Shop(conn)
    messaging = shop_messaging(db_path, conn, shop)

    def write_publish_then_fail() -> None:
        with transaction(conn):
            conn.execute("INSERT INTO orders VALUES ('o-1')")
            messaging.publish(OrderPlaced("o-1"))
            raise Boom

    with pytest.raises(Boom):
        write_publish_then_fail()

    assert (orders(db_path), stored(db_path, "outbox")) == ([], 0)

    with transaction(conn):
        conn.execute("INSERT INTO orders VALUES ('o-1')")
        messaging.publish(OrderPlaced("o-1"))

    assert (orders(db_path), stored(db_path, "outbox")) == (["o-1"], 1)
    messaging.close()


def test_with_no_transaction_open_a_message_is_stored_and_committed_at_once(
    db_path: Path,
) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)  # autocommit, no BEGIN
    shop = Shop(conn)
    messaging = shop_messaging(db_path, conn, shop)

    messaging.publish(OrderPlaced("o-1"))

    assert stored(db_path, "outbox") == 1
    assert conn.in_transaction is False  # nothing left open on the application's connection
    messaging.close()
    conn.close()


def test_default_isolation_begins_at_the_first_write_so_send_first_needs_an_explicit_begin(
    db_path: Path,
) -> None:
    """Python's ``with conn:`` opens no transaction until a write; BEGIN opens it up front."""
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE orders (id TEXT PRIMARY KEY)")
    messaging = shop_messaging(db_path, conn, Shop(conn))

    def begin_publish_write_then_fail() -> None:
        with conn:
            conn.execute("BEGIN")
            messaging.publish(OrderPlaced("o-1"))
            conn.execute("INSERT INTO orders VALUES ('o-1')")
            raise Boom

    with pytest.raises(Boom):
        begin_publish_write_then_fail()

    assert (orders(db_path), stored(db_path, "outbox")) == ([], 0)

    def publish_write_then_fail() -> None:
        with conn:
            messaging.publish(OrderPlaced("o-2"))  # no transaction yet: its own, committed
            conn.execute("INSERT INTO orders VALUES ('o-2')")
            raise Boom

    with pytest.raises(Boom):
        publish_write_then_fail()

    assert (orders(db_path), stored(db_path, "outbox")) == ([], 1)
    messaging.close()
    conn.close()


def test_the_outbox_can_move_messages_on_to_an_in_memory_channel(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE orders (id TEXT PRIMARY KEY)")
    shop = Shop(conn)
    messaging = Messaging(
        handlers=[shop],
        channels=[
            SqliteChannel("outbox", path=db_path, connection=lambda: conn),
            QueueChannel("orders"),
        ],
        clock=VirtualClock(),
        ids=SequentialIds(),
    )
    with conn:
        messaging.send(PlaceOrder("o-1"))

    messaging.run_until_idle()

    assert shop.notified == ["o-1"]
    assert stored(db_path, "outbox") == 0
    messaging.close()
    conn.close()


# --- the application's transaction around handling ------------------------------------------


class Fulfilment:
    """Consumed from "orders": writes a shipment row, sends ShipmentBooked, fails once."""

    def __init__(self, connection: sqlite3.Connection, failures: int) -> None:
        self.connection = connection
        self.failures = failures
        self.attempts = 0
        self.booked: list[str] = []

    @asynchronous("orders")
    @command_handler
    def ship(self, command: PlaceOrder, ctx: Context) -> None:
        self.attempts += 1
        self.connection.execute("INSERT INTO shipments VALUES (?)", (command.order_id,))
        ctx.publish(OrderPlaced(command.order_id))
        if self.failures:
            self.failures -= 1
            raise Boom("carrier timed out")

    @asynchronous("outbox", "notifications")
    @event_handler
    def booked_(self, event: OrderPlaced) -> None:
        self.booked.append(event.order_id)


def fulfilment_messaging(
    db_path: Path, conn: sqlite3.Connection, fulfilment: Fulfilment, **options: object
) -> Messaging:
    conn.execute("CREATE TABLE IF NOT EXISTS shipments (id TEXT PRIMARY KEY)")
    return Messaging(
        handlers=[fulfilment],
        channels=[
            # Sent to inside the application's transactions, so through its connection too.
            SqliteChannel("orders", path=db_path, connection=conn),
            SqliteChannel("outbox", path=db_path, connection=conn),
            QueueChannel("notifications"),
        ],
        clock=VirtualClock(),
        ids=SequentialIds(),
        transaction=sqlite_transaction(conn),
        **options,  # type: ignore[arg-type]
    )


def shipments(db_path: Path) -> list[str]:
    return [str(row[0]) for row in rows(db_path, "SELECT id FROM shipments ORDER BY id")]


def test_a_failed_attempt_rolls_back_its_rows_and_messages_and_the_retry_succeeds_once(
    db_path: Path, conn: sqlite3.Connection
) -> None:
    fulfilment = Fulfilment(conn, failures=1)
    messaging = fulfilment_messaging(db_path, conn, fulfilment, retry=RetryPolicy(instant=1))
    messaging.send(PlaceOrder("o-1"))

    assert messaging.run("orders").processed == 1

    assert fulfilment.attempts == 2
    assert shipments(db_path) == ["o-1"]  # the failed attempt's row was rolled back
    assert stored(db_path, "outbox") == 1  # and so was its message
    assert conn.in_transaction is False
    messaging.run_until_idle()
    assert fulfilment.booked == ["o-1"]
    failed = messaging.journal.of_kind(RecordKind.FAILED)
    assert [(r.endpoint_id, r.exception.message if r.exception else None) for r in failed] == [
        ("Fulfilment.ship", "carrier timed out")
    ]
    messaging.close()


def test_a_handler_that_keeps_failing_leaves_no_rows_and_no_messages(
    db_path: Path, conn: sqlite3.Connection
) -> None:
    fulfilment = Fulfilment(conn, failures=10)
    messaging = fulfilment_messaging(db_path, conn, fulfilment, retry=RetryPolicy(instant=2))
    messaging.send(PlaceOrder("o-1"))

    messaging.run("orders")

    assert fulfilment.attempts == 3
    assert (shipments(db_path), stored(db_path, "outbox")) == ([], 0)
    assert messaging.dead_letters.count() == 1
    assert messaging.dead_letters.list()[0].exception_message == "carrier timed out"
    messaging.close()


def test_a_send_made_while_the_application_is_in_a_transaction_joins_it_instead_of_committing(
    db_path: Path, conn: sqlite3.Connection, transaction: Transaction
) -> None:
    fulfilment = Fulfilment(conn, failures=0)
    messaging = fulfilment_messaging(db_path, conn, fulfilment)

    def write_publish_then_fail() -> None:
        with transaction(conn):
            conn.execute("INSERT INTO shipments VALUES ('manual')")
            messaging.publish(OrderPlaced("manual"))  # the factory joins the open transaction
            assert conn.in_transaction
            raise Boom

    with pytest.raises(Boom):
        write_publish_then_fail()

    assert (shipments(db_path), stored(db_path, "outbox")) == ([], 0)
    messaging.close()


def test_handled_message_ids_are_kept_in_the_same_file_and_a_redelivery_is_skipped(
    db_path: Path, conn: sqlite3.Connection
) -> None:
    keys = SqliteDeduplication(db_path)
    fulfilment = Fulfilment(conn, failures=0)
    messaging = fulfilment_messaging(
        db_path, conn, fulfilment, deduplication=Deduplication(store=keys)
    )
    messaging.send(PlaceOrder("o-1"))
    # The same message stored twice, as after a relay that crashed between forwarding and
    # acknowledging: at least once means a consumer must expect it.
    with sqlite3.connect(db_path) as raw:
        raw.execute(
            "INSERT INTO conveyor_messages (channel, body, headers, priority, available_at, "
            "delivery_count, enqueued_seq) SELECT channel, body, headers, priority, "
            "available_at, 0, enqueued_seq + 1 FROM conveyor_messages WHERE channel = 'orders'"
        )

    assert messaging.run("orders").processed == 2

    assert fulfilment.attempts == 1
    assert shipments(db_path) == ["o-1"]
    assert [r.message_id for r in messaging.journal.of_kind(RecordKind.DUPLICATE)] == ["msg-1"]
    assert rows(db_path, "SELECT endpoint_id, key FROM conveyor_deduplication") == [
        ("Fulfilment.ship", "msg-1")
    ]
    messaging.close()
    keys.close()


def test_a_channel_on_the_same_file_without_the_connection_says_how_to_join_the_transaction(
    db_path: Path, conn: sqlite3.Connection
) -> None:
    fulfilment = Fulfilment(conn, failures=0)
    messaging = Messaging(
        handlers=[fulfilment],
        channels=[
            SqliteChannel("orders", path=db_path, busy_timeout=timedelta(milliseconds=20)),
            SqliteChannel("outbox", path=db_path, connection=conn),
            QueueChannel("notifications"),
        ],
        clock=VirtualClock(),
        transaction=sqlite_transaction(conn),
    )

    with pytest.raises(ConnectionFailed, match="give SqliteChannel\\('orders'\\) connection="):
        messaging.send(PlaceOrder("o-1"))  # BEGIN IMMEDIATE holds the lock "orders" waits for

    assert conn.in_transaction is False  # rolled back
    messaging.close()


# --- sqlite_transaction -----------------------------------------------------------------------


def test_a_transaction_scope_commits_on_success_and_rolls_back_on_failure(
    db_path: Path, conn: sqlite3.Connection
) -> None:
    scope = sqlite_transaction(conn)

    with scope():
        assert conn.in_transaction
        conn.execute("INSERT INTO orders VALUES ('kept')")

    def write_then_fail() -> None:
        with scope():
            conn.execute("INSERT INTO orders VALUES ('undone')")
            raise Boom

    with pytest.raises(Boom):
        write_then_fail()

    assert orders(db_path) == ["kept"]
    assert conn.in_transaction is False


def test_a_transaction_scope_joins_an_open_transaction_and_leaves_it_to_its_owner(
    db_path: Path, conn: sqlite3.Connection
) -> None:
    scope = sqlite_transaction(lambda: conn)
    conn.execute("BEGIN")

    with scope() as inner:
        conn.execute("INSERT INTO orders VALUES ('o-1')")
    assert repr(inner) == "SqliteTransaction(joined)"
    assert conn.in_transaction  # not committed by the inner scope
    assert orders(db_path) == []

    with pytest.raises(Boom), scope():
        raise Boom
    assert conn.in_transaction  # nor rolled back: the owner decides
    conn.execute("COMMIT")
    assert orders(db_path) == ["o-1"]


def test_a_failed_rollback_is_noted_on_the_exception_the_block_raised(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)

    def close_then_fail() -> None:
        with sqlite_transaction(conn)():
            conn.close()  # the rollback that follows cannot run
            raise Boom("the handler's own failure")

    with pytest.raises(Boom, match="the handler's own failure") as raised:
        close_then_fail()

    assert raised.value.__notes__ == [
        "conveyor_sqlite: rolling back the transaction also failed: Cannot operate on a closed "
        "database."
    ]


def test_a_transaction_scope_waits_for_the_write_lock_and_says_so_when_it_cannot_get_it(
    db_path: Path,
) -> None:
    conn = sqlite3.connect(db_path, timeout=0.05)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    with pytest.raises(TransportError, match="stayed locked for longer than busy_timeout"):
        with sqlite_transaction(conn)():
            pass

    other.execute("ROLLBACK")
    other.close()
    conn.close()


def test_sqlite_transaction_refuses_what_is_not_a_connection() -> None:
    with pytest.raises(ConfigurationError, match=r"sqlite3\.Connection or a callable"):
        sqlite_transaction("shop.db")  # type: ignore[arg-type]


# --- the application's connection must be on the channel's file -----------------------------


def test_an_application_connection_on_another_file_is_refused_when_the_channel_opens(
    db_path: Path, tmp_path: Path
) -> None:
    elsewhere = sqlite3.connect(tmp_path / "other.db")

    with pytest.raises(ConfigurationError) as raised:
        Messaging(
            channels=[SqliteChannel("outbox", path=db_path, connection=elsewhere)],
            clock=VirtualClock(),
        )

    assert str(raised.value) == (
        f"SqliteTransport on {str(db_path)!r} writes its messages through the application's "
        f"connection, but that connection is on {str(tmp_path / 'other.db')!r} and the channel "
        f"is on {str(db_path)!r}. The message and the business change must be in one file for "
        f"one transaction to hold both: open the application's connection on {str(db_path)!r}, "
        f"or give the channel path= of the application's database."
    )
    elsewhere.close()


def test_a_callable_is_checked_at_the_first_send_through_each_connection_it_returns(
    db_path: Path, tmp_path: Path, clock: VirtualClock
) -> None:
    right = sqlite3.connect(db_path)
    wrong = sqlite3.connect(":memory:")
    current = [right]
    transport = SqliteTransport(db_path, clock=clock, connection=lambda: current[0])

    right.execute("BEGIN")
    transport.send("outbox", WireMessage(b"1"))
    right.execute("COMMIT")
    current[0] = wrong
    wrong.execute("BEGIN")
    with pytest.raises(ConfigurationError, match="an in-memory or temporary database"):
        transport.send("outbox", WireMessage(b"2"))

    assert transport.pending("outbox") == 1
    transport.close()
    right.close()
    wrong.close()


def test_the_same_file_is_recognised_through_another_spelling_of_its_path(
    db_path: Path, tmp_path: Path, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = tmp_path / "link.db"
    os.symlink(db_path, link)
    monkeypatch.chdir(tmp_path)
    transport = SqliteTransport(db_path.name, clock=clock)  # relative
    app = sqlite3.connect(link)  # through a symlink
    outbox = SqliteTransport(str(db_path), clock=clock, connection=app)

    with app:
        app.execute("BEGIN")
        outbox.send("outbox", WireMessage(b"x"))

    assert transport.pending("outbox") == 1
    outbox.close()
    transport.close()
    app.close()


def test_a_callable_returning_something_else_is_refused(db_path: Path, clock: VirtualClock) -> None:
    transport = SqliteTransport(db_path, clock=clock, connection=lambda: "shop.db")  # type: ignore[arg-type]

    with pytest.raises(ConfigurationError, match="it must return the application's"):
        transport.send("outbox", WireMessage(b"x"))
    transport.close()


# --- the transport's own lifecycle and errors ---------------------------------------------------


def test_a_closed_outbox_refuses_sends_and_leaves_the_application_connection_open(
    db_path: Path, clock: VirtualClock
) -> None:
    app = sqlite3.connect(db_path)
    transport = SqliteTransport(db_path, clock=clock, connection=app)
    transport.close()

    app.execute("BEGIN")
    with pytest.raises(TransportClosed):
        transport.send("outbox", WireMessage(b"x"))
    app.execute("ROLLBACK")
    assert app.execute("SELECT 1").fetchone() == (1,)
    app.close()


def test_a_failure_on_the_application_connection_is_a_conveyor_error_naming_the_file(
    db_path: Path, clock: VirtualClock
) -> None:
    app = sqlite3.connect(db_path, isolation_level=None)
    transport = SqliteTransport(db_path, clock=clock, connection=app)
    app.execute("BEGIN")
    app.execute("DROP TABLE conveyor_messages")  # rolled back below

    with pytest.raises(TransportError, match="in the application's transaction") as raised:
        transport.send("outbox", WireMessage(b"x"))

    assert str(db_path) in str(raised.value)
    assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
    app.execute("ROLLBACK")
    transport.close()
    app.close()


def test_the_per_thread_outbox_recipe_sends_every_committed_order_and_no_rolled_back_one(
    db_path: Path,
) -> None:
    """Two threads, each with its own connection (the recipe for a threaded web app): every
    committed order's event leaves through the outbox, no rolled-back order's does, and neither
    thread waits on the other's lock until ``database is locked``."""
    local = threading.local()

    def connection() -> sqlite3.Connection:
        if not hasattr(local, "conn"):
            local.conn = sqlite3.connect(db_path, timeout=30)
        conn: sqlite3.Connection = local.conn
        return conn

    with connection() as setup:
        setup.execute("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY)")

    notified: list[str] = []

    @command_handler
    def place(command: PlaceOrder, ctx: Context) -> None:
        connection().execute("INSERT INTO orders VALUES (?)", (command.order_id,))
        ctx.publish(OrderPlaced(command.order_id))
        if command.order_id.endswith("3"):
            raise Boom(command.order_id)

    @asynchronous("outbox", "orders")
    @event_handler
    def notify(event: OrderPlaced) -> None:
        notified.append(event.order_id)

    messaging = Messaging(
        handlers=[place, notify],
        channels=[
            SqliteChannel("outbox", path=db_path, connection=connection),
            SqliteChannel("orders", path=db_path),
        ],
        transaction=sqlite_transaction(connection),
    )
    failed: list[str] = []

    def place_orders(thread: int) -> None:
        for n in range(100):
            order_id = f"t{thread}-{n:03d}"
            try:
                messaging.send(PlaceOrder(order_id))
            except Boom:
                failed.append(order_id)
        connection().close()

    threads = [threading.Thread(target=place_orders, args=(t,)) for t in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    committed = orders(db_path)
    assert len(committed) == 180
    assert len(failed) == 20
    assert not set(committed) & set(failed)
    assert stored(db_path, "outbox") == 180
    assert messaging.run("outbox", finish_when_empty=True).processed == 180
    assert messaging.run("orders", finish_when_empty=True).processed == 180
    assert sorted(notified) == committed
    messaging.close()
    connection().close()
