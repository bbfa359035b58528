"""One log line per message a worker consumed: what, which, where, how it ended, how long.

A worker that is silent about successful work cannot be watched: an operator wants to see the
flow (Celery logs "Task ... succeeded in 0.01s"). The line names the message type, its id, the
channel, the endpoint, the outcome and the duration, from the wire headers: never the payload,
which may hold personal data. The same fields go in the record's ``extra`` so a JSON formatter
(``conveyor run --log-format json``) ships them as fields.

Only workers on real time log this (on virtual time a handler takes no time, and tests read the
journal instead), and only when the ``conveyor.activity`` logger is enabled for INFO.
"""

from __future__ import annotations

import logging
from datetime import datetime

from conveyor.core.outcome import Outcome
from conveyor.core.wire import Delivery, H

__all__ = ["activity_logged", "log_consumed"]

_ACTIVITY = logging.getLogger("conveyor.activity")


def activity_logged() -> bool:
    """Whether consumed messages are logged now (checked per message: logging can change)."""
    return _ACTIVITY.isEnabledFor(logging.INFO)


def log_consumed(
    channel: str, delivery: Delivery, outcome: Outcome, started: datetime, finished: datetime
) -> None:
    """Log how one delivery ended, at INFO (DEBUG for a stale or released one)."""
    headers = delivery.message.headers
    fields = {
        "message_type": headers.get(H.TYPE, "?"),
        "message_id": headers.get(H.ID, "?"),
        "channel": channel,
        "endpoint": headers.get(H.ENDPOINT, "") or "-",
        "outcome": outcome.value,
        "duration_ms": round((finished - started).total_seconds() * 1000, 3),
        "delivery": delivery.delivery_count,
    }
    _ACTIVITY.info(
        "%(outcome)s %(message_type)s [%(message_id)s] channel=%(channel)s "
        "endpoint=%(endpoint)s in %(duration_ms).1f ms",
        fields,
        extra=fields,
    )
