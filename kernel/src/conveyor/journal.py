"""The journal: every step a message takes, as immutable records in order.

Sends, publishes, asks, queueing, deliveries, handlings, failures, retries, expiries and dead
letters each append one :class:`Record` stamped with the (virtual) time. Tests query it; the pytest
plugin prints it as a timeline when an assertion fails.
"""

from __future__ import annotations

import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = ["RecordKind", "Record", "ExceptionInfo", "Journal"]


class RecordKind(StrEnum):
    """What happened to a message."""

    SENT = "sent"  # a command was sent on the command bus
    PUBLISHED = "published"  # an event was published on the event bus
    ASKED = "asked"  # a query was asked
    QUEUED = "queued"  # a copy was put on a channel for an endpoint
    FORWARDED = "forwarded"  # a copy moved on to the next channel of its sequence
    HANDLED = "handled"  # a handler returned
    FAILED = "failed"  # a handler raised (one record per attempt)
    RETRIED = "retried"  # a failed copy was scheduled again
    ERROR_HANDLED = "error_handled"  # a failure was given to an error handler
    EXPIRED = "expired"  # a copy's time to live ran out before it was handled
    DEAD_LETTERED = "dead_lettered"  # a copy was put in the dead-letter store
    REPLAYED = "replayed"  # a dead letter was sent back to its channel
    DISCARDED = "discarded"  # a final failure strategy of "ignore" dropped a copy
    REQUEUED = "requeued"  # a final failure strategy of "resend" put a copy back at the tail
    DUPLICATE = "duplicate"  # deduplication skipped a copy its endpoint already handled
    REJECTED = "rejected"  # a message that could not be decoded or routed was set aside
    TICKED = "ticked"  # a scheduled endpoint ran


@dataclass(frozen=True, slots=True)
class ExceptionInfo:
    """An exception as the journal and dead-letter store keep it.

    ``error`` holds the original exception object while the process lives (for fail-fast
    re-raising); it is not compared and not stored durably.
    """

    type_name: str
    module: str
    message: str
    traceback: str
    error: BaseException | None = field(default=None, compare=False, repr=False)

    @classmethod
    def capture(cls, error: BaseException) -> ExceptionInfo:
        kind = type(error)
        return cls(
            type_name=kind.__qualname__,
            module=kind.__module__,
            message=str(error),
            traceback="".join(traceback.format_exception(error)),
            error=error,
        )

    @property
    def qualified_name(self) -> str:
        return f"{self.module}.{self.type_name}" if self.module != "builtins" else self.type_name

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}" if self.message else self.type_name


@dataclass(frozen=True, slots=True)
class Record:
    """One step in a message's life.

    Attributes:
        seq: position in the journal, from 1.
        at: the clock's time when it happened.
        kind: what happened.
        message_id: the message's ``id`` header (shared by the copies of one event).
        message_type: the payload type's qualified name, or the routing key.
        payload: the payload object (decoded), when known.
        channel: the channel involved, if any.
        endpoint_id: the handler's endpoint id, if any.
        attempt: the delivery attempt (1 for the first).
        exception: the failure, for failed and dead-lettered records.
        delay: the delay of a retry or of a delayed send.
        detail: a short human note (a reason, a due time).
        causation_id: the id of the message being handled when this one was sent.
    """

    seq: int
    at: datetime
    kind: RecordKind
    message_id: str
    message_type: str
    payload: object = None
    channel: str | None = None
    endpoint_id: str | None = None
    attempt: int = 1
    exception: ExceptionInfo | None = None
    delay: timedelta | None = None
    detail: str = ""
    causation_id: str | None = None


class Journal:
    """An append-only, in-order list of records, optionally bounded.

    A long-running production consumer bounds it (``max_records``) so it cannot grow without end;
    tests keep everything.
    """

    __slots__ = ("_listeners", "_records", "_seq")

    def __init__(self, max_records: int | None = None) -> None:
        self._records: deque[Record] = deque(maxlen=max_records)
        self._seq = 0
        self._listeners: list[Callable[[Record], None]] = []

    def append(
        self, at: datetime, kind: RecordKind, message_id: str, message_type: str, **fields: object
    ) -> Record:
        self._seq += 1
        record = Record(self._seq, at, kind, message_id, message_type, **fields)  # type: ignore[arg-type]
        self._records.append(record)
        for listener in self._listeners:
            listener(record)
        return record

    def subscribe(self, listener: Callable[[Record], None]) -> None:
        """Call ``listener`` with each new record (used by logging and live views)."""
        self._listeners.append(listener)

    def __iter__(self) -> Iterator[Record]:
        return iter(tuple(self._records))

    def __len__(self) -> int:
        return len(self._records)

    @property
    def records(self) -> tuple[Record, ...]:
        return tuple(self._records)

    def of_kind(self, *kinds: RecordKind) -> list[Record]:
        return [r for r in self._records if r.kind in kinds]

    def last(self, count: int) -> list[Record]:
        return list(self._records)[-count:]

    def clear(self) -> None:
        self._records.clear()
