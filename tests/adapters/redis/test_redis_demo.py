"""The demo shop's day (``python -m examples.shop``) on Redis channels gives the SQLite timeline.

The shop's own handlers (orders saved in SQLite, a mailer that times out twice, a warehouse
that is down, a nightly report) run with the outbox, "notifications" and "warehouse" on Redis
and dead letters in Redis, on the demo's ``VirtualClock``. The Redis transport reads time from
that clock, so the day runs exactly and at once against the real server; its timeline and
summary must be the demo's own, record for record.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from conveyor import (
    Backoff,
    Messaging,
    RetryPolicy,
    SequentialIds,
    VirtualClock,
    event_handler,
)
from conveyor_redis import RedisChannel, RedisDeadLetterStore
from conveyor_sqlite import sqlite_transaction
from examples.shop.__main__ import ORDERS, START, render
from examples.shop.app import Mailer, Orders, create_messaging, nightly_sales_report, reserve_stock
from examples.shop.messages import PlaceOrder, SalesReport


def day(messaging: Messaging, mailer: Mailer, reports: list[SalesReport]) -> list[str]:
    """The demo's day: three orders five minutes apart, then on to 02:30 the next night."""
    with messaging:
        for order_id, customer, total in ORDERS:
            messaging.send(PlaceOrder(order_id, customer, Decimal(total)))
            messaging.advance(timedelta(minutes=5))
        messaging.advance_to(datetime(2026, 1, 6, 2, 30, tzinfo=UTC))
        text = render(messaging, mailer, reports, Path("the store"))
    return text.splitlines()


def reporter(reports: list[SalesReport]) -> object:
    @event_handler
    def file_report(report: SalesReport) -> None:
        reports.append(report)

    return file_report


def test_the_demo_day_on_redis_channels_matches_the_demo_on_sqlite(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    sqlite_mailer, sqlite_reports = Mailer(failures_before_success=2), []
    on_sqlite = create_messaging(
        VirtualClock(START),
        tmp_path / "sqlite" / "shop.db",
        ids=SequentialIds(),
        mailer=sqlite_mailer,
        extra_handlers=[reporter(sqlite_reports)],
    )
    expected = day(on_sqlite, sqlite_mailer, sqlite_reports)

    connection = sqlite3.connect(tmp_path / "orders.db")
    retry = RetryPolicy(
        delays=Backoff.exponential(initial=timedelta(seconds=1), factor=2), attempts=3
    )
    redis_mailer, redis_reports = Mailer(failures_before_success=2), []
    on_redis = Messaging(
        handlers=[
            Orders(connection),
            redis_mailer,
            reserve_stock,
            nightly_sales_report,
            reporter(redis_reports),
        ],
        channels=[
            RedisChannel("outbox", url=redis_url, prefix=prefix),
            RedisChannel("notifications", url=redis_url, prefix=prefix, retry=retry),
            RedisChannel("warehouse", url=redis_url, prefix=prefix, retry=retry),
        ],
        dead_letters=RedisDeadLetterStore(redis_url, prefix=prefix),
        transaction=sqlite_transaction(connection),
        clock=VirtualClock(START),
        ids=SequentialIds(),
    )
    timeline = day(on_redis, redis_mailer, redis_reports)

    assert timeline == expected
    assert "  Mon 09:00:03  handled      OrderPlaced msg-2 by Mailer.confirm (attempt 3)" in (
        timeline
    )
    assert "  dead letters         3 in the store" in timeline
    assert "  nightly report       3 orders, 69.49 revenue" in timeline
