"""How loaded a channel is, read from ``conveyor_messages`` for ``conveyor list``.

One statement over the channel's rows (an operator's reading, not a hot path): a row is in
flight while its lease has not run out; every other row is pending, due or delayed. A waiting
row has been receivable since its due time, or since its lease ran out if it was leased and
not acknowledged; the oldest of those gives the age an operator watches for a stuck consumer.
Values written by hand that are not numbers are left out, as the receive leaves them out.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from conveyor.transports.seam import ChannelStats
from conveyor_sqlite.instants import from_unix_ms, to_unix_ms

if TYPE_CHECKING:  # importing the adapter must not import sqlite3 (its import-cost test)
    import sqlite3

__all__ = ["channel_stats"]

_STATS = """
    SELECT COUNT(*),
           COALESCE(SUM(lease_until > :now), 0),
           MIN(CASE WHEN since <= :now THEN since END)
    FROM (
        SELECT lease_until,
               CASE WHEN lease_until > available_at THEN lease_until ELSE available_at END
                   AS since
        FROM (
            SELECT CASE WHEN typeof(lease_until) IN ('integer', 'real')
                        THEN lease_until END AS lease_until,
                   CASE WHEN typeof(available_at) IN ('integer', 'real')
                        THEN available_at END AS available_at
            FROM conveyor_messages WHERE channel = :channel
        )
    )
"""


def channel_stats(connection: sqlite3.Connection, channel: str, now: datetime) -> ChannelStats:
    """Pending, in flight, and the age of the longest-waiting receivable message of ``channel``."""
    now_ms = to_unix_ms(now)
    stored, leased, since = connection.execute(
        _STATS, {"now": now_ms, "channel": channel}
    ).fetchone()
    oldest = None if since is None else max(now - from_unix_ms(since), timedelta(0))
    return ChannelStats(pending=stored - leased, in_flight=leased, oldest_age=oldest)
