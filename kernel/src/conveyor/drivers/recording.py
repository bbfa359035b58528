"""Writing the journal: one record per step of a message, stamped with the clock's time.

While a delivery from a dynamic channel is consumed, :meth:`Recorder.consuming_via` names the
concrete channel it came from, per call (a ``ContextVar``, as handling scopes are): every record
about that channel then carries ``via`` without each step of consumption passing it along.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta

from conveyor.core.clock import Clock
from conveyor.core.collector import AttemptState, PendingSend
from conveyor.core.journal import ExceptionInfo, Journal, RecordKind
from conveyor.core.message import Message
from conveyor.core.wire import Delivery, H, WireMessage

__all__ = ["Recorder"]


class Recorder:
    """Appends records about messages to one journal, reading time from one clock."""

    __slots__ = ("_via", "clock", "journal", "verb")

    def __init__(self, journal: Journal, clock: Clock) -> None:
        self.journal = journal
        self.clock = clock
        #: The send, publish or ask of a new message (``verb(kind, message)``): the journal's
        #: own method, as every bus call records one and a layer here would cost each a call.
        self.verb: Callable[[RecordKind, Message], None] = journal.add_new
        self._via: ContextVar[tuple[str, str] | None] = ContextVar("conveyor_via", default=None)

    @contextmanager
    def consuming_via(self, channel: str, via: str) -> Iterator[None]:
        """Records on ``channel`` made in this block name ``via`` as its concrete channel."""
        token = self._via.set((channel, via))
        try:
            yield
        finally:
            self._via.reset(token)

    def via(self, channel: str | None) -> str | None:
        """The concrete channel behind ``channel`` for the delivery being consumed, if any."""
        current = self._via.get()
        return current[1] if current is not None and current[0] == channel else None

    def message(
        self,
        kind: RecordKind,
        message: Message,
        *,
        channel: str | None = None,
        endpoint_id: str | None = None,
        attempt: int = 1,
        exception: ExceptionInfo | None = None,
        delay: timedelta | None = None,
        detail: str = "",
        at: datetime | None = None,
        via: str | None = None,
        wire: WireMessage | None = None,
    ) -> None:
        """A record about a message the kernel holds (its payload and headers are known).

        ``via`` names the concrete channel behind a dynamic ``channel``; by default, the one
        of the delivery being consumed (:meth:`consuming_via`).
        """
        headers = message.headers
        payload = message.payload
        if via is None and channel is not None:
            via = self.via(channel)
        self.journal.add(
            payload,
            (
                self.clock.now() if at is None else at, kind, headers.id,
                message.routing_key or type(payload).__qualname__, channel, endpoint_id, attempt,
                exception, delay, detail, headers.causation_id, headers, via, wire, None,
            ),
        )  # fmt: skip

    def handled(self, message: Message, endpoint_id: str, channel: str | None) -> None:
        """A handler returned: :meth:`message` without the keywords, as every handler call
        records one."""
        headers = message.headers
        payload = message.payload
        self.journal.add(
            payload,
            (
                self.clock.now(), RecordKind.HANDLED, headers.id,
                message.routing_key or type(payload).__qualname__, channel, endpoint_id,
                headers.attempt, None, None, "", headers.causation_id, headers,
                None if channel is None else self.via(channel), None, None,
            ),
        )  # fmt: skip

    def received(self, channel: str, delivery: Delivery) -> None:
        """Journal a consumer's delivery when it is a redelivery, or when the journal keeps
        every delivery (``Journal(deliveries=True)``); both drivers' consumers call it."""
        if delivery.delivery_count > 1 or self.journal.deliveries:
            self.delivered(channel, delivery)

    def delivered(self, channel: str, delivery: Delivery) -> None:
        """A consumer received a copy; read from its wire headers, before anything is decoded
        (a record even for a message that turns out malformed)."""
        headers = delivery.message.headers
        self.journal.append(
            self.clock.now(),
            RecordKind.DELIVERED,
            headers.get(H.ID, delivery.receipt),
            headers.get(H.TYPE, "?"),
            channel=channel,
            endpoint_id=headers.get(H.ENDPOINT),
            # a redelivery counts as an attempt, as consumption reads it (drivers.deliveries)
            attempt=max(_attempt(headers.get(H.ATTEMPT)), delivery.delivery_count),
            causation_id=headers.get(H.CAUSATION),
            via=self.via(channel),
            delivery_count=delivery.delivery_count,
        )

    def unsent(self, pending: PendingSend) -> None:
        """The collector dropped a copy it held: the work that sent it failed."""
        self.message(
            RecordKind.UNSENT,
            pending.message,
            endpoint_id=pending.endpoint_id,
            channel=pending.channel,
            attempt=pending.message.headers.attempt,
            detail="the work that sent it failed; it never left",
        )

    def failure(
        self,
        state: AttemptState,
        message: Message,
        *,
        endpoint_id: str,
        channel: str | None,
        error: BaseException,
        detail: str = "",
    ) -> None:
        """Journal a failed attempt once, wherever in its stack the exception was raised.

        ``state`` belongs to one attempt: the same exception propagating through enclosing
        handlers and layers of that attempt is recorded where it was raised, and only there; a
        later attempt raising the very same object is recorded again.
        """
        if state.recorded is error:
            return
        state.recorded = error
        self.message(
            RecordKind.FAILED,
            message,
            endpoint_id=endpoint_id,
            channel=channel,
            exception=ExceptionInfo.capture(error),
            attempt=message.headers.attempt,
            detail=detail,
        )


def _attempt(value: str | None) -> int:
    """The attempt a wire header claims, for the record only (malformed ones are rejected later)."""
    try:
        return max(int(value), 1) if value is not None else 1
    except ValueError:
        return 1
