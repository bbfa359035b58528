"""Writing the journal: one record per step of a message, stamped with the clock's time.

While a delivery from a dynamic channel is consumed, :meth:`Recorder.consuming_via` names the
concrete channel it came from, per call (a ``ContextVar``, as handling scopes are): every record
about that channel then carries ``via`` without each step of consumption passing it along.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta

from conveyor.core.clock import Clock
from conveyor.core.collector import AttemptState
from conveyor.core.journal import ExceptionInfo, Journal, RecordKind
from conveyor.core.message import Message

__all__ = ["Recorder"]


class Recorder:
    """Appends records about messages to one journal, reading time from one clock."""

    __slots__ = ("_via", "clock", "journal")

    def __init__(self, journal: Journal, clock: Clock) -> None:
        self.journal = journal
        self.clock = clock
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
            (self.clock.now() if at is None else at, kind, headers.id,
             message.routing_key or type(payload).__qualname__, channel, endpoint_id, attempt,
             exception, delay, detail, headers.causation_id, headers, via),
            payload,
        )  # fmt: skip

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
