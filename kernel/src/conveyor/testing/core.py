"""The part of a test harness that is not an assertion: verbs, settling, queries, bookkeeping.

:class:`HarnessCore` wraps one ``Messaging``. It passes every verb through (send, publish, ask,
run, advance, ...) and adds what tests need around them: settling that is exact and only moves
the clock when asked; queries over the journal that settle first, so a negative answer is as
exact as a positive one; inspections of pending work that do not settle; and the bookkeeping
strict teardown reads (which failures were asserted, which exceptions reached the test, which
pending messages were looked at).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, overload

from conveyor.clock import Clock, VirtualClock
from conveyor.driving import RunResult
from conveyor.handlers import handler_mark
from conveyor.journal import Journal, Record, RecordKind
from conveyor.messaging import Messaging
from conveyor.replay import DeadLetters
from conveyor.testing.flow import (
    FAILURE_KINDS,
    CopyKey,
    Pending,
    fold_copies,
    pending_copies,
)
from conveyor.testing.matching import MessageMatcher, as_matcher
from conveyor.testing.query import ExceptionSpec, Query
from conveyor.testing.report import FlowAssertionError, Snapshot

__all__ = ["HarnessCore", "Matches"]

_K = RecordKind


class Matches(Sequence[Record]):
    """The records a query selected, oldest first, with :meth:`one` for single matches."""

    __slots__ = ("_explain_one", "_records")

    def __init__(self, records: list[Record], explain_one: Callable[[int], str]) -> None:
        self._records = records
        self._explain_one = explain_one

    def one(self) -> Record:
        """The single matching record; fails, with the full explanation, on zero or several."""
        __tracebackhide__ = True
        if len(self._records) != 1:
            raise FlowAssertionError(self._explain_one(len(self._records)))
        return self._records[0]

    def payloads(self) -> list[object]:
        """The matched messages themselves."""
        return [r.payload for r in self._records]

    @overload
    def __getitem__(self, index: int) -> Record: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Record]: ...
    def __getitem__(self, index: int | slice) -> Record | Sequence[Record]:
        return self._records[index]

    def __len__(self) -> int:
        return len(self._records)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Matches):
            return self._records == other._records
        if isinstance(other, Sequence):
            return list(self._records) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Matches({self._records!r})"


class HarnessCore:
    """A ``Messaging`` under test, without the ``assert_*`` methods (see ``Harness``).

    Args:
        messaging: the kernel to drive; every attribute it has is reachable through the harness.
        advance_time: whether settling jumps the clock to the next due message (retries,
            delayed messages) by default; settling never moves the clock unless asked.
        width: the widest line failure output prints.
        replay: a line printed at the end of failure output (the plugin puts the rerun command).
    """

    def __init__(
        self,
        messaging: Messaging,
        *,
        advance_time: bool = False,
        width: int = 92,
        replay: str | None = None,
    ) -> None:
        self.messaging = messaging
        self.advance_time = advance_time
        self.width = width
        self.replay = replay
        self.origin: datetime = messaging.clock.now()
        self._asserted_failures: dict[CopyKey, int] = {}
        self._asserted_letters: set[int] = set()
        self._raised: set[int] = set()
        self._inspected: set[CopyKey] = set()

    # ------------------------------------------------------------------ Messaging's verbs

    @property
    def clock(self) -> Clock:
        return self.messaging.clock

    @property
    def journal(self) -> Journal:
        return self.messaging.journal

    @property
    def dead_letters(self) -> DeadLetters:
        return self.messaging.dead_letters

    def send(self, command: object, **options: Any) -> object:
        """``Messaging.send``; a handler's exception that reaches the test counts as seen."""
        __tracebackhide__ = True
        with self._raising():
            return self.messaging.send(command, **options)

    def publish(self, event: object, **options: Any) -> None:
        __tracebackhide__ = True
        with self._raising():
            self.messaging.publish(event, **options)

    def ask(self, query: object, **options: Any) -> Any:
        __tracebackhide__ = True
        with self._raising():
            return self.messaging.ask(query, **options)

    def run(self, name: str, **limits: Any) -> RunResult:
        __tracebackhide__ = True
        with self._raising():
            return self.messaging.run(name, **limits)

    def run_until_idle(self, advance_time: bool = False, max_steps: int | None = None) -> int:
        __tracebackhide__ = True
        with self._raising():
            return self.messaging.run_until_idle(advance_time=advance_time, max_steps=max_steps)

    def advance(self, duration: timedelta, *, max_steps: int | None = None) -> int:
        __tracebackhide__ = True
        with self._raising():
            return self.messaging.advance(duration, max_steps=max_steps)

    def advance_to(self, instant: datetime, *, max_steps: int | None = None) -> int:
        __tracebackhide__ = True
        with self._raising():
            return self.messaging.advance_to(instant, max_steps=max_steps)

    def consumers(self) -> list[str]:
        return self.messaging.consumers()

    def close(self) -> None:
        self.messaging.close()

    def __getattr__(self, name: str) -> Any:
        # Everything else a Messaging has (channels, handlers, command_bus(), ...).
        if name == "messaging":
            raise AttributeError(name)
        return getattr(self.messaging, name)

    def __enter__(self) -> HarnessCore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        m = self.messaging
        return f"{type(self).__name__}(handlers={len(m.handlers)}, channels={list(m.channels)})"

    @contextmanager
    def _raising(self) -> Iterator[None]:
        try:
            yield
        except Exception as error:
            self._note_raised(error)
            raise

    def _note_raised(self, error: BaseException) -> None:
        chain: list[BaseException] = []
        current: BaseException | None = error
        while current is not None and current not in chain:
            chain.append(current)
            current = current.__cause__ or current.__context__
        for record in self.journal.records:
            if (
                record.kind is _K.FAILED
                and record.exception is not None
                and any(record.exception.error is e for e in chain)
            ):
                self._raised.add(record.seq)

    # ------------------------------------------------------------------ settling

    def settle(self, *, advance_time: bool | None = None, max_steps: int | None = None) -> int:
        """Run every consumer until nothing is runnable; returns the steps taken.

        With ``advance_time`` (default: the harness's setting) the clock then jumps to the next
        message due on a channel (a retry, a delayed message) and settling goes on, until no
        message waits. Scheduled endpoints tick on the way but never keep settling going, so a
        cron job cannot make it run forever. More than ``max_steps`` steps raises
        ``SettleError`` with the last journal records (a runaway loop).
        """
        __tracebackhide__ = True
        m = self.messaging
        budget = max_steps if max_steps is not None else m.max_steps
        with self._raising():
            steps = m.run_until_idle(max_steps=budget)
            if not (self.advance_time if advance_time is None else advance_time):
                return steps
            names = list(m.channels)
            while True:
                due = m.driver.next_due(names)
                if due is None or due <= m.clock.now():
                    return steps
                left = None if budget is None else max(budget - steps, 0)
                steps += m.advance_to(due, max_steps=left)

    # ------------------------------------------------------------------ inspection (no settling)

    def pending(
        self, message: MessageMatcher = None, *, by: object = None, channel: str | None = None
    ) -> list[Pending]:
        """Messages waiting on channels (queued, delayed, or waiting for a retry); no settling.

        Looking counts: strict teardown does not complain about pending work a test inspected.
        """
        matcher = as_matcher(message)
        endpoint = self.endpoint_of(by) if by is not None else None
        found = [
            p
            for p in self._pending()
            if matcher.matches(p.payload, p.message_type)
            and (endpoint is None or p.endpoint_id == endpoint)
            and (channel is None or p.channel == channel)
        ]
        self._inspected.update((p.message_id, p.endpoint_id) for p in found)
        return found

    def _pending(self) -> list[Pending]:
        held: dict[str, int] = {}
        for name, runtime in self.messaging.channels.items():
            transport = runtime.transport
            count = getattr(transport, "pending", None)  # InspectableTransport, checked cheaply
            if callable(count):
                held[name] = count(name)
        return pending_copies(fold_copies(self.journal.records), held)

    def schedules(self) -> list[tuple[str, datetime]]:
        """Each scheduled endpoint with its next planned tick."""
        return [(name, endpoint.due) for name, endpoint in self.messaging.driver.scheduled.items()]

    def snapshot(self) -> Snapshot:
        """What failure output shows, as of now."""
        return Snapshot(
            tuple(self.journal.records),
            self.origin,
            self.clock.now(),
            tuple(self._pending()),
            tuple(self.schedules()),
            self._jumps_clock(),
            self.replay,
            self.width,
        )

    def _jumps_clock(self) -> bool:
        return self.advance_time and isinstance(self.clock, VirtualClock)

    # ------------------------------------------------------------------ handlers

    def endpoint_of(self, handler: object) -> str:
        """The endpoint id of a handler given as a function, bound method or endpoint id."""
        endpoints = self.messaging.endpoints
        if isinstance(handler, str):
            if handler in endpoints:
                return handler
        else:
            target = getattr(handler, "__func__", handler)
            for spec in self.messaging.handlers:
                if (
                    spec.function == handler
                    or getattr(spec.function, "__func__", spec.function) is target
                ):
                    return spec.endpoint_id
        known = ", ".join(sorted(endpoints)) or "none"
        raise ValueError(
            f"{handler!r} is not a handler of this Messaging (endpoint ids: {known}); pass the "
            f"handler function, the bound method, or its endpoint id."
        )

    def is_handler(self, candidate: object) -> bool:
        """Whether ``candidate`` names one of this Messaging's handlers."""
        if isinstance(candidate, str):
            return candidate in self.messaging.endpoints
        if handler_mark(getattr(candidate, "__func__", candidate)) is None:
            return False
        try:
            self.endpoint_of(candidate)
        except ValueError:
            return False
        return True

    # ------------------------------------------------------------------ queries

    def select(self, query: Query, *, settle: bool = True) -> list[Record]:
        """Records matching ``query``, after settling; failures returned count as asserted."""
        __tracebackhide__ = True
        if settle:
            self.settle()
        found = query.select(self.journal.records)
        self.acknowledge(found)
        return found

    def acknowledge(self, records: Sequence[Record]) -> None:
        """Mark failures and dead letters as asserted, so strict teardown accepts them."""
        last = len(self.journal) and self.journal.records[-1].seq
        for record in records:
            if record.kind is _K.DEAD_LETTERED:
                self._asserted_letters.add(record.seq)
            if record.endpoint_id is not None and (
                record.kind in FAILURE_KINDS or record.kind in (_K.RETRIED, _K.DEAD_LETTERED)
            ):
                self._asserted_failures[(record.message_id, record.endpoint_id)] = last

    # ------------------------------------------------------------------ what strict teardown reads

    def unasserted_failures(self) -> list[Record]:
        """Failed attempts and expiries that no assertion matched and no test call raised."""
        return [
            r
            for r in self.journal.records
            if r.kind in FAILURE_KINDS
            and r.seq not in self._raised
            and self._asserted_failures.get((r.message_id, r.endpoint_id or ""), 0) < r.seq
        ]

    def unasserted_dead_letters(self) -> list[Record]:
        """Dead letters still in the store that no assertion matched."""
        stored = {letter.id for letter in self.messaging.dead_letters.list()}
        return [
            r
            for r in self.journal.records
            if r.kind is _K.DEAD_LETTERED
            and r.seq not in self._asserted_letters
            and _letter_id(r) in stored
        ]

    def uninspected_pending(self) -> list[Pending]:
        """Messages still waiting that the test neither settled nor looked at."""
        return [p for p in self._pending() if (p.message_id, p.endpoint_id) not in self._inspected]

    def query(
        self,
        verb: str,
        kinds: frozenset[RecordKind],
        message: MessageMatcher,
        *,
        by: object = None,
        headers: Mapping[str, str] | None = None,
        exception: ExceptionSpec | None = None,
        match: str | None = None,
        attempt: int | None = None,
        attempt_label: str = "attempt",
        extra: tuple[str, ...] = (),
    ) -> Query:
        return Query(
            verb,
            kinds,
            as_matcher(message),
            self.endpoint_of(by) if by is not None else None,
            headers,
            exception,
            match,
            attempt,
            attempt_label,
            extra,
        )

    def matches(self, query: Query) -> Matches:
        __tracebackhide__ = True
        found = self.select(query)
        return Matches(found, lambda count: self.explain_count(query, found, exactly=1))

    def sent(
        self, message: MessageMatcher = None, *, headers: Mapping[str, str] | None = None
    ) -> Matches:
        """Commands sent (by the test or by handlers), after settling."""
        return self.matches(self.query("sent", _SENT, message, headers=headers))

    def published(
        self, message: MessageMatcher = None, *, headers: Mapping[str, str] | None = None
    ) -> Matches:
        """Events published, after settling."""
        return self.matches(self.query("published", _PUBLISHED, message, headers=headers))

    def asked(
        self, message: MessageMatcher = None, *, headers: Mapping[str, str] | None = None
    ) -> Matches:
        """Queries asked, after settling."""
        return self.matches(self.query("asked", _ASKED, message, headers=headers))

    def handled(
        self,
        message: MessageMatcher = None,
        *,
        by: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> Matches:
        """Successful handlings (one record per handler that returned), after settling."""
        return self.matches(self.query("handled", _HANDLED, message, by=by, headers=headers))

    def failed(
        self,
        message: MessageMatcher = None,
        *,
        by: object = None,
        exception: ExceptionSpec | None = None,
        match: str | None = None,
        attempt: int | None = None,
    ) -> Matches:
        """Failed attempts (instant retries included), after settling."""
        return self.matches(
            self.query(
                "failed", _FAILED, message, by=by, exception=exception, match=match, attempt=attempt
            )
        )

    def retried(self, message: MessageMatcher = None, *, by: object = None) -> Matches:
        """Delayed retries scheduled (each record has the ``delay``), after settling."""
        return self.matches(self.query("retried", _RETRIED, message, by=by))

    def expired(self, message: MessageMatcher = None, *, by: object = None) -> Matches:
        """Copies whose time to live ran out before they were handled, after settling."""
        return self.matches(self.query("expired", _EXPIRED, message, by=by))

    def dead_lettered(
        self,
        message: MessageMatcher = None,
        *,
        by: object = None,
        exception: ExceptionSpec | None = None,
    ) -> Matches:
        """Copies put in the dead-letter store, after settling."""
        return self.matches(self.query("dead-lettered", _DEAD, message, by=by, exception=exception))

    def explain_count(self, query: Query, found: list[Record], *, exactly: int) -> str:
        raise NotImplementedError  # provided by Harness


def _letter_id(record: Record) -> str:
    """The dead-letter id a DEAD_LETTERED record names (``...; dead letter <id>``)."""
    _, found, letter_id = record.detail.rpartition("dead letter ")
    return letter_id if found else ""


_SENT = frozenset({_K.SENT})
_PUBLISHED = frozenset({_K.PUBLISHED})
_ASKED = frozenset({_K.ASKED})
_HANDLED = frozenset({_K.HANDLED})
_FAILED = frozenset({_K.FAILED})
_RETRIED = frozenset({_K.RETRIED})
_EXPIRED = frozenset({_K.EXPIRED})
_DEAD = frozenset({_K.DEAD_LETTERED})
