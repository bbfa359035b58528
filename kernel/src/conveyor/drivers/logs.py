"""Logging what goes wrong, through the standard ``logging`` module (logger ``"conveyor"``).

The journal holds every step; operators of a consumer process need the failures in their logs.
Each failure-kind record becomes one log line at a level that says how much it needs a person:
a retry is a warning, a dead letter or a rejected message is an error. Payloads are never
logged (they may hold personal data); ids, types, channels and exception messages are.
"""

from __future__ import annotations

import logging

from conveyor.core.journal import Journal, Record, RecordKind

__all__ = ["log_failures"]

_LEVELS = {
    RecordKind.FAILED: logging.DEBUG,  # the outcome (retry, dead letter...) follows at its level
    RecordKind.RETRIED: logging.WARNING,
    RecordKind.REQUEUED: logging.WARNING,
    RecordKind.EXPIRED: logging.WARNING,
    RecordKind.ERROR_HANDLED: logging.WARNING,
    RecordKind.DISCARDED: logging.WARNING,
    RecordKind.DEAD_LETTERED: logging.ERROR,
    RecordKind.REJECTED: logging.ERROR,
}


def log_failures(journal: Journal, logger: logging.Logger) -> None:
    """Log every failure-kind record of ``journal`` to ``logger`` as it is written."""

    def log(record: Record) -> None:
        level = _LEVELS[record.kind]
        if not logger.isEnabledFor(level):
            return
        where = " ".join(
            part
            for part in (
                f"channel={record.channel}" if record.channel else "",
                f"endpoint={record.endpoint_id}" if record.endpoint_id else "",
                f"attempt={record.attempt}",
                f"retry_in={record.delay}" if record.delay else "",
            )
            if part
        )
        failure = f": {record.exception}" if record.exception else ""
        detail = f" ({record.detail})" if record.detail else ""
        logger.log(
            level,
            "%s %s [%s] %s%s%s",
            record.kind.value,
            record.message_type,
            record.message_id,
            where,
            detail,
            failure,
        )

    journal.subscribe(log, kinds=_LEVELS)
