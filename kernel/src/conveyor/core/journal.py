"""The journal: every step a message takes, as immutable records in order.

Sends, publishes, asks, queueing, deliveries, handlings, failures, retries, expiries and dead
letters each append one :class:`Record` stamped with the (virtual) time. Tests query it; the pytest
plugin prints it as a timeline when an assertion fails.
"""

from __future__ import annotations

import itertools
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Generic

from typing_extensions import TypeVar

from conveyor.core.headers import Headers
from conveyor.core.message import Message
from conveyor.core.wire import WireMessage

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
    RELEASED = "released"  # a delivery was given back to come again (a store it needs failed)
    STALE = "stale"  # a consumer finished after its lease ran out; the message comes again
    DELIVERED = "delivered"  # a consumer received a copy (a redelivery always; every one with
    #   Journal(deliveries=True)); ``delivery_count`` says which delivery of it this was
    UNSENT = "unsent"  # the collector dropped a copy: the work that sent it failed, so it never
    #   left for its channel (its send or publish record stays, this one says so)


@dataclass(frozen=True, slots=True)
class ExceptionInfo:
    """An exception as the journal and dead-letter store keep it.

    ``error`` holds the original exception object while the process lives (for fail-fast
    re-raising); it is not compared and not stored durably. The traceback text is formatted
    on first use of :attr:`traceback` (``text`` holds it): formatting costs more than the rest of
    a failed attempt, and most failures recorded in tests are never printed.
    """

    type_name: str
    module: str
    message: str
    text: str | None = field(default=None, compare=False, repr=False)
    error: BaseException | None = field(default=None, compare=False, repr=False)

    @classmethod
    def capture(cls, error: BaseException) -> ExceptionInfo:
        kind = type(error)
        return cls(
            type_name=kind.__qualname__, module=kind.__module__, message=str(error), error=error
        )

    @property
    def traceback(self) -> str:
        """The formatted traceback, as ``traceback.format_exception`` gives it."""
        if self.text is None:
            formatted = "".join(traceback.format_exception(self.error)) if self.error else ""
            object.__setattr__(self, "text", formatted)
            return formatted
        return self.text

    @property
    def qualified_name(self) -> str:
        return f"{self.module}.{self.type_name}" if self.module != "builtins" else self.type_name

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}" if self.message else self.type_name


P = TypeVar("P", default=object)
"""The payload type of a record: ``Record[OrderPlaced]`` from ``published(OrderPlaced)``."""


@dataclass(frozen=True, slots=True)
class Record(Generic[P]):
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
        headers: the message's headers (user headers included), when the record is about a
            message the kernel holds; tests match on them.
        via: for a record on a dynamic channel, the concrete channel behind it (``channel``
            is "orders", ``via`` is "orders.tenant-a"); None otherwise.
        wire: for a queued record, what crossed the channel (body bytes and string headers),
            so a test can assert the wire form; None otherwise, or when payloads are not kept.
        delivery_count: for a delivered record, which delivery of the message this was (1 the
            first time, as the transport counts); None otherwise.
    """

    seq: int
    at: datetime
    kind: RecordKind
    message_id: str
    message_type: str
    payload: P = None  # type: ignore[assignment]  # None when the payload is unknown
    channel: str | None = None
    endpoint_id: str | None = None
    attempt: int = 1
    exception: ExceptionInfo | None = None
    delay: timedelta | None = None
    detail: str = ""
    causation_id: str | None = None
    headers: Headers | None = field(default=None, repr=False, compare=False)
    via: str | None = None
    wire: WireMessage | None = field(default=None, repr=False, compare=False)
    delivery_count: int | None = None

    @property
    def where(self) -> str | None:
        """The channel as people read it: ``orders``, or ``orders[orders.tenant-a]`` when a
        dynamic channel's concrete channel is known."""
        if self.channel is None or self.via is None:
            return self.channel
        return f"{self.channel}[{self.via}]"


_Entry = tuple[int, object, tuple[Any, ...]]
"""A stored record: ``(seq, payload or None, the other fields in Record order)``. The payload
stands apart so a journal that keeps no payloads stores None without copying the fields."""
_KIND = 1  # where ``kind`` is in an entry's fields
_WIRE = 13  # where ``wire`` is


def _number(entry: _Entry) -> int:
    return entry[0]


def _make_record(entry: _Entry) -> Record:
    seq, payload, fields = entry
    values: tuple[Any, ...] = (seq, *fields[:4], payload, *fields[4:])
    return Record(*values)


class Journal:
    """An append-only, in-order list of records, optionally bounded.

    Appending is on every send's hot path, so entries are kept as plain tuples and turned into
    :class:`Record` values when read (each at most once). A long-running production consumer
    bounds the journal (``max_records``) so it cannot grow without end, and keeps no payloads
    (``keep_payloads=False``): ten thousand records of 100 KB messages would otherwise hold a
    gigabyte. Listeners still see each record's payload as it is appended. Tests keep
    everything.
    """

    __slots__ = (
        "_entries",
        "_keep_payloads",
        "_listeners",
        "_listening",
        "_lock",
        "_made",
        "_numbers",
        "deliveries",
    )

    def __init__(
        self,
        max_records: int | None = None,
        *,
        keep_payloads: bool = True,
        deliveries: bool = False,
    ) -> None:
        self._keep_payloads = keep_payloads
        #: Record every delivery (DELIVERED), not only redeliveries: a test that asserts how
        #: many times a consumer received a message turns it on.
        self.deliveries = deliveries
        self._entries: deque[_Entry] = deque(maxlen=max_records)
        self._made: dict[int, Record] = {}
        self._numbers = itertools.count(1)
        #: Guards reading (the made-record cache, snapshots) and subscribing; appending needs
        #: no lock (see :meth:`add`).
        self._lock = threading.RLock()
        self._listeners: list[tuple[Callable[[Record], None], frozenset[RecordKind] | None]] = []
        #: The listeners of each kind, in subscription order: a record of a kind nobody listens
        #: to (a send, a handling, when only failures are logged) costs one lookup.
        self._listening: dict[RecordKind, tuple[Callable[[Record], None], ...]] = {}

    def append(
        self,
        at: datetime,
        kind: RecordKind,
        message_id: str,
        message_type: str,
        *,
        payload: object = None,
        channel: str | None = None,
        endpoint_id: str | None = None,
        attempt: int = 1,
        exception: ExceptionInfo | None = None,
        delay: timedelta | None = None,
        detail: str = "",
        causation_id: str | None = None,
        headers: Headers | None = None,
        via: str | None = None,
        wire: WireMessage | None = None,
        delivery_count: int | None = None,
    ) -> None:
        """Add a record; its fields are those of :class:`Record`, numbered in order."""
        self.add(
            payload,
            (
                at, kind, message_id, message_type, channel, endpoint_id, attempt, exception,
                delay, detail, causation_id, headers, via, wire, delivery_count,
            ),
        )  # fmt: skip

    def add_new(self, kind: RecordKind, message: Message) -> None:
        """The send, publish or ask of a new message, at its timestamp.

        Every bus call records one, so it is built here, where it is stored, rather than by a
        recorder calling :meth:`add`: one call fewer on every send.
        """
        headers = message.headers
        payload = message.payload
        fields = (
            headers.timestamp, kind, headers.id, message.routing_key or type(payload).__qualname__,
            None, None, 1, None, None, "", headers.causation_id, headers, None, None, None,
        )  # fmt: skip
        entry = (next(self._numbers), payload if self._keep_payloads else None, fields)
        self._entries.append(entry)
        listeners = self._listening.get(kind)
        if listeners:
            self._notify(listeners, entry, payload)

    def add(self, payload: object, fields: tuple[Any, ...]) -> None:
        """Add a record given as its payload and its other fields after ``seq``, in
        :class:`Record` order (:meth:`append` with the keywords, for the hot path's recorder).

        Safe from many threads without a lock, which a send would pay twice: taking the next
        number and appending to the deque are each one atomic operation in CPython. Two threads
        may store their records in the other order than they were numbered; readers sort by
        number (:meth:`_snapshot`), so every reader sees records in numbering order.
        """
        if self._keep_payloads:
            kept = payload
        else:  # neither the payload nor the wire form of it
            kept = None
            if fields[_WIRE] is not None:
                fields = (*fields[:_WIRE], None, *fields[_WIRE + 1 :])
        entry = (next(self._numbers), kept, fields)
        self._entries.append(entry)
        listeners = self._listening.get(fields[_KIND])
        if listeners:
            self._notify(listeners, entry, payload)

    def _notify(
        self, listeners: tuple[Callable[[Record], None], ...], entry: _Entry, payload: object
    ) -> None:
        if entry[1] is payload:
            record = self._record(entry)
        else:  # the listener sees the payload; the journal does not keep it
            record = replace(_make_record(entry), payload=payload)
        for listener in listeners:
            listener(record)

    def _record(self, entry: _Entry) -> Record:
        record = self._made.get(entry[0])
        if record is None:
            with self._lock:
                record = self._made.get(entry[0])
                if record is None:
                    record = self._made[entry[0]] = _make_record(entry)
                    maxlen = self._entries.maxlen
                    if maxlen is not None and len(self._made) > 2 * maxlen:
                        oldest = self._entries[0][0]
                        self._made = {seq: r for seq, r in self._made.items() if seq >= oldest}
        return record

    def _snapshot(self) -> tuple[_Entry, ...]:
        with self._lock:
            entries = tuple(self._entries)  # one C call: no append lands halfway through it
        # In numbering order (appends from several threads may land out of it); already in
        # order, as nearly always, this is one linear pass.
        return tuple(sorted(entries, key=_number))

    def subscribe(
        self, listener: Callable[[Record], None], kinds: Iterable[RecordKind] | None = None
    ) -> None:
        """Call ``listener`` with each new record, or each of ``kinds`` (logging, live views)."""
        with self._lock:
            self._listeners.append((listener, frozenset(kinds) if kinds is not None else None))
            self._listening = {
                kind: tuple(f for f, only in self._listeners if only is None or kind in only)
                for kind in RecordKind
            }

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def records(self) -> tuple[Record, ...]:
        return tuple(self._record(entry) for entry in self._snapshot())

    def of_kind(self, *kinds: RecordKind) -> list[Record]:
        return [self._record(e) for e in self._snapshot() if e[2][_KIND] in kinds]

    def last(self, count: int) -> list[Record]:
        return [self._record(e) for e in self._snapshot()[-count:]]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._made.clear()
