"""The shop's handlers and how they are wired, on durable SQLite channels.

Orders are rows in the shop's own table, in the same SQLite file as the channels. Each order's
``OrderPlaced`` leaves through the outbox: written in the transaction that writes the order, so
an order that fails to save sends no e-mail, and a saved order's e-mail is never lost. The
outbox's consumer moves the events on to "notifications" and "warehouse".

``create_messaging`` is the factory the CLI uses:
``conveyor dead-letter list --app examples.shop.app:create_messaging``.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from conveyor import (
    Backoff,
    Clock,
    Context,
    Messaging,
    RetryPolicy,
    asynchronous,
    command_handler,
    event_handler,
    query_handler,
    scheduled,
)
from conveyor.core.ids import IdGenerator
from conveyor_sqlite import SqliteChannel, SqliteDeadLetterStore, sqlite_transaction
from examples.shop.messages import (
    GenerateSalesReport,
    OrderCount,
    OrderPlaced,
    PlaceOrder,
    SalesReport,
)

DEFAULT_DATABASE = Path("var") / "shop.db"


class WarehouseUnavailable(ConnectionError):
    """The warehouse system refuses connections (it is down for the whole demo)."""


class MailServerBusy(TimeoutError):
    """The mail server times out now and then."""


class Orders:
    """Takes orders into the ``orders`` table and answers how many there are."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.db = connection
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, customer TEXT, total TEXT)"
        )

    @command_handler
    def place(self, command: PlaceOrder, ctx: Context) -> None:
        self.db.execute(
            "INSERT INTO orders VALUES (?, ?, ?)",
            (command.order_id, command.customer, str(command.total)),
        )
        ctx.publish(OrderPlaced(command.order_id, command.customer, command.total))

    @query_handler
    def count(self, query: OrderCount) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM orders").fetchone()[0])

    @command_handler
    def report(self, command: GenerateSalesReport, ctx: Context) -> None:
        totals = [Decimal(total) for (total,) in self.db.execute("SELECT total FROM orders")]
        ctx.publish(SalesReport(len(totals), sum(totals, Decimal(0))))


class Mailer:
    """Sends confirmation e-mails; the mail server times out on the first two tries."""

    def __init__(self, failures_before_success: int = 2) -> None:
        self.failures_left = failures_before_success
        self.sent: list[str] = []

    @asynchronous("outbox", "notifications")
    @event_handler
    def confirm(self, event: OrderPlaced, ctx: Context) -> None:
        if self.failures_left > 0:
            self.failures_left -= 1
            raise MailServerBusy("mail server timed out")
        self.sent.append(event.customer)


@asynchronous("outbox", "warehouse")
@event_handler
def reserve_stock(event: OrderPlaced) -> None:
    """Always fails: the warehouse is down, so the order ends in the dead-letter store."""
    raise WarehouseUnavailable("warehouse: connection refused")


@scheduled(cron="0 2 * * *")
def nightly_sales_report(ctx: Context) -> GenerateSalesReport:
    """At 02:00 UTC every night, ask for the day's sales report."""
    return GenerateSalesReport((ctx.now - timedelta(days=1)).date())


def create_messaging(
    clock: Clock | None = None,
    database: str | os.PathLike[str] = DEFAULT_DATABASE,
    *,
    ids: IdGenerator | None = None,
    mailer: Mailer | None = None,
    extra_handlers: list[object] | None = None,
) -> Messaging:
    """Build the shop's messaging on one SQLite file (created with its directory if needed).

    Every handler runs in a transaction on the shop's own connection, and "outbox" writes
    through that connection, so a message sent while handling commits with the handler's rows.
    """
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(database)
    retry = RetryPolicy(
        delays=Backoff.exponential(initial=timedelta(seconds=1), factor=2), attempts=3
    )
    return Messaging(
        handlers=[
            Orders(connection),
            mailer or Mailer(),
            reserve_stock,
            nightly_sales_report,
            *(extra_handlers or []),
        ],
        channels=[
            SqliteChannel("outbox", path=database, connection=connection),
            SqliteChannel("notifications", path=database, retry=retry),
            SqliteChannel("warehouse", path=database, retry=retry),
        ],
        dead_letters=SqliteDeadLetterStore(database),
        transaction=sqlite_transaction(connection),
        clock=clock,
        ids=ids,
    )
