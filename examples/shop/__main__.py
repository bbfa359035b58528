"""Run the demo shop: ``python -m examples.shop``.

A simulated day on a real SQLite file (``var/shop.db``): three orders at 09:00, each saved as a
row with its ``OrderPlaced`` event written to the outbox in the same transaction, an e-mail that
succeeds on its third try, a warehouse that is down so each reservation ends in the dead-letter
store, and a nightly report at 02:00. Time is a ``VirtualClock``, so the day takes a moment; the
messages, retries and dead letters are real rows in the file, and stay there for the CLI:

    .venv/bin/conveyor dead-letter list --app examples.shop.app:create_messaging
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from conveyor import Messaging, Record, RecordKind, SequentialIds, VirtualClock, event_handler
from examples.shop.app import DEFAULT_DATABASE, Mailer, create_messaging
from examples.shop.messages import OrderCount, PlaceOrder, SalesReport

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ORDERS = [("o-1", "ada", "42.50"), ("o-2", "grace", "19.99"), ("o-3", "linus", "7.00")]
SHOWN = {RecordKind.SENT, RecordKind.RETRIED, RecordKind.DEAD_LETTERED, RecordKind.TICKED}


def main(database: Path = DEFAULT_DATABASE) -> int:
    """Run the day and print its timeline and a summary; returns the exit code."""
    for suffix in ("", "-wal", "-shm"):  # a fresh shop every run
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    reports: list[SalesReport] = []

    @event_handler
    def file_report(report: SalesReport) -> None:
        reports.append(report)

    mailer = Mailer(failures_before_success=2)
    clock = VirtualClock(START)
    messaging = create_messaging(
        clock, database, ids=SequentialIds(), mailer=mailer, extra_handlers=[file_report]
    )
    with messaging:
        for order_id, customer, total in ORDERS:
            messaging.send(PlaceOrder(order_id, customer, Decimal(total)))
            messaging.advance(timedelta(minutes=5))
        messaging.advance_to(datetime(2026, 1, 6, 2, 30, tzinfo=UTC))
        print(render(messaging, mailer, reports, database))
    return 0


def render(messaging: Messaging, mailer: Mailer, reports: list[SalesReport], database: Path) -> str:
    lines = ["Timeline (virtual time, UTC)"]
    for record in messaging.journal:
        if record.kind in SHOWN or (record.kind is RecordKind.HANDLED and record.channel):
            lines.append("  " + describe(record))
    letters = messaging.dead_letters.list()
    report = reports[-1] if reports else None
    lines += [
        "",
        "Summary",
        f"  orders placed        {messaging.ask(OrderCount())} (rows in the orders table; their "
        f"events left through the outbox)",
        f"  e-mails sent         {len(mailer.sent)} (after 2 timeouts, retried after 1 s and 2 s)",
        f"  dead letters         {len(letters)} in {database}",
        "  nightly report       "
        + (f"{report.orders} orders, {report.revenue} revenue" if report else "not run"),
        "",
        "See the dead letters:  .venv/bin/conveyor dead-letter list "
        "--app examples.shop.app:create_messaging",
    ]
    return "\n".join(lines)


def describe(record: Record) -> str:
    time = record.at.strftime("%a %H:%M:%S")
    what = f"{record.message_type} {record.message_id}"
    where = record.endpoint_id or ""
    if record.kind is RecordKind.SENT:
        return f"{time}  sent         {what}"
    if record.kind is RecordKind.TICKED:
        return f"{time}  scheduled    {where}"
    if record.kind is RecordKind.HANDLED:
        return f"{time}  handled      {what} by {where} (attempt {record.attempt})"
    failure = record.exception.message if record.exception else ""
    if record.kind is RecordKind.RETRIED:
        delay = int(record.delay.total_seconds()) if record.delay else 0
        return f"{time}  failed       {what} by {where}: {failure}; retry in {delay} s"
    return f"{time}  dead letter  {what} by {where}: {failure}"


if __name__ == "__main__":
    sys.exit(main())
