"""What a check drives: the transport's verbs, and time, behind one small synchronous interface.

The checks are written once, against :class:`Harness`.
:class:`~pytest_conveyor.conformance.sync_harness.TransportHarness` calls a sync
:class:`~conveyor.transports.seam.Transport` directly;
:class:`~pytest_conveyor.conformance.async_harness.AsyncTransportHarness` runs each verb of an
:class:`~conveyor.transports.seam.AsyncTransport` as a coroutine on its own event loop. So the
same check bodies hold both twins to the same promises, with nothing duplicated.

Time is the harness's too (:mod:`pytest_conveyor.conformance.timing`): :meth:`Harness.expect`
and :meth:`Harness.expect_nothing` step a virtual clock to a boundary, or poll a real one up to
it; a check never sleeps and never knows which of the two it runs on.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

from conveyor.core.clock import Clock, SteppableClock, SystemClock
from conveyor.transports.seam import (
    Capabilities,
    ChannelOptions,
    Delivery,
    WireMessage,
)
from pytest_conveyor.conformance.timing import Timing

__all__ = ["Harness", "NotApplicable", "STAGGER", "real_seconds"]

STAGGER = timedelta(milliseconds=50)
"""How long after a long poll began its waking send comes (a stimulus, not a wait for work)."""

_REAL = SystemClock()
"""Polls pause on real time even around a virtual clock: eventual visibility is the broker's."""


def real_seconds() -> float:
    """Seconds on a monotonic real clock, to time a call whatever clock the transport reads."""
    return _REAL.monotonic()


class NotApplicable(Exception):
    """A check tests a promise the transport declares it does not make (e.g. no priority)."""


class Harness(ABC):
    """One transport under test, its clock, and the verbs and waits the checks use.

    Subclasses implement the transport verbs; the waits are written once, here.

    Args:
        clock: the clock the transport reads; a ``SteppableClock`` means virtual time.
        make_channel: a fresh, unique channel name per call (default ``conformance-<n>``).
        timing: the durations the checks use (default: from the capabilities and time mode).
    """

    def __init__(
        self,
        clock: Clock,
        *,
        make_channel: Callable[[], str] | None = None,
        timing: Timing | None = None,
    ) -> None:
        self.clock = clock
        self.virtual = isinstance(clock, SteppableClock)
        self._make_channel = make_channel if make_channel is not None else _counter()
        self._timing = timing
        self._closed = False
        self._early: dict[str, Delivery] = {}  # see expect_nothing

    # What the transport is -------------------------------------------------------------------

    @property
    @abstractmethod
    def capabilities(self) -> Capabilities: ...

    @property
    @abstractmethod
    def name(self) -> str:
        """The transport's class name, for messages."""

    @property
    @abstractmethod
    def renewable(self) -> bool: ...

    @property
    @abstractmethod
    def inspectable(self) -> bool: ...

    @property
    def timing(self) -> Timing:
        if self._timing is None:
            self._timing = Timing.virtual() if self.virtual else Timing.real(self.capabilities)
        return self._timing

    @timing.setter
    def timing(self, timing: Timing) -> None:
        self._timing = timing

    def channel(self) -> str:
        """A fresh channel name."""
        return self._make_channel()

    # The verbs, as the seam has them ---------------------------------------------------------

    @abstractmethod
    def declare(self, options: ChannelOptions) -> None: ...

    @abstractmethod
    def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None: ...

    @abstractmethod
    def _receive(
        self, channel: str, *, lease: timedelta, max_messages: int, wait: timedelta | None
    ) -> list[Delivery]: ...

    def receive(
        self,
        channel: str,
        *,
        lease: timedelta | None = None,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]:
        """``receive`` with the timing's lease unless told otherwise."""
        found = self._receive(
            channel, lease=lease or self.timing.lease, max_messages=max_messages, wait=wait
        )
        if len(found) > max_messages:
            raise AssertionError(
                f"{self.name}.receive(max_messages={max_messages}) returned {len(found)} deliveries"
            )
        return found

    @abstractmethod
    def ack(self, delivery: Delivery) -> None: ...

    @abstractmethod
    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None: ...

    @abstractmethod
    def renew(self, delivery: Delivery, *, lease: timedelta) -> None: ...

    @abstractmethod
    def pending(self, channel: str) -> int: ...

    @abstractmethod
    def next_due(self, channel: str) -> datetime | None: ...

    def close(self) -> None:
        """Close the transport (the checks of behaviour after close call it)."""
        self._closed = True
        self._close()

    @abstractmethod
    def _close(self) -> None: ...

    @abstractmethod
    def reopen(self) -> Harness:
        """Another transport on the same storage: a restarted process, or a second consumer
        with its own connection. Closed with this harness."""

    @property
    @abstractmethod
    def can_reopen(self) -> bool: ...

    @abstractmethod
    def receive_during_send(
        self, channel: str, message: WireMessage, *, wait: timedelta, sender: Harness
    ) -> tuple[list[Delivery], float]:
        """Long-poll ``channel`` for up to ``wait`` while ``sender`` sends ``message`` a moment
        later (from another thread, or another task); what came, and the real seconds taken."""

    @abstractmethod
    def close_all(self) -> None:
        """Close every transport this harness opened (teardown; tolerates closed ones)."""

    # Time ------------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def precision(self) -> timedelta:
        return self.capabilities.delay_precision

    def pass_time(self, duration: timedelta) -> None:
        """Let ``duration`` go by: step a virtual clock, or wait a real one out (polling)."""
        if self.virtual:
            self._step_to(self.now() + duration)
            return
        deadline = self.now() + duration
        while (left := deadline - self.now()) > timedelta(0):
            self.pause(min(left, self.timing.poll))

    def pause(self, duration: timedelta) -> None:
        """Pause real time between two polls (an async harness lets its loop run meanwhile)."""
        _REAL.sleep(duration.total_seconds())

    def _step_to(self, instant: datetime) -> None:
        clock = self.clock
        assert isinstance(clock, SteppableClock)
        if instant > clock.now():
            clock.advance_to(instant)

    # Expectations ----------------------------------------------------------------------------

    def receive_one(self, channel: str, *, lease: timedelta | None = None) -> Delivery | None:
        """One due delivery or None, at once."""
        found = self.receive(channel, lease=lease)
        return found[0] if found else None

    def expect(
        self, channel: str, what: str, *, by: datetime | None = None, lease: timedelta | None = None
    ) -> Delivery:
        """The next delivery on ``channel``, which must be receivable by ``by`` (default now).

        Virtual time: the clock is stepped to ``by`` and one receive must return it. Real time:
        receive is polled until ``by`` plus the slack. Eventual visibility adds its allowance.
        """
        if self.virtual and by is not None:
            self._step_to(by)
        span = self._visibility()
        if not self.virtual:
            target = by if by is not None else self.now()
            span += max(target - self.now(), timedelta(0)) + self.timing.slack
        deadline = _REAL.monotonic() + span.total_seconds()
        while True:
            delivery = self._early.pop(channel, None) or self.receive_one(channel, lease=lease)
            if delivery is not None:
                return delivery
            if _REAL.monotonic() >= deadline:
                polled = f", polling for {span.total_seconds():g} s" if span else ""
                raise AssertionError(
                    f"{self.name} delivered nothing on {channel!r} where {what} was due "
                    f"at {self.now().isoformat()}{polled}"
                )
            self.pause(self.timing.poll)

    def expect_nothing(self, channel: str, why: str, *, until: datetime | None = None) -> None:
        """Nothing is receivable on ``channel`` now, nor (polling real time) until ``until``.

        ``until`` is a boundary less the declared precision. Virtual time steps the clock there
        and receives once. Real time polls: a delivery from a receive that returned before
        ``until`` is a broken promise (the transport read its clock more than its precision
        before the boundary); one from a receive that returned at or after ``until`` proves
        nothing (a broker rounding to its precision may hand it out then), and is kept for the
        next :meth:`expect` on the channel, which it would have gone to.
        """
        if self.virtual and until is not None:
            self._step_to(until)
        while True:
            delivery = self.receive_one(channel)
            returned = self.now()
            if delivery is not None:
                if until is not None and not self.virtual and returned >= until:
                    self._early[channel] = delivery
                    return
                raise AssertionError(
                    f"{self.name} delivered {_show(delivery)} on {channel!r} at "
                    f"{returned.isoformat()}, but {why}"
                )
            if self.virtual or until is None or returned >= until:
                return
            self.pause(min(self.timing.poll, until - returned))

    def drain(
        self, channel: str, *, expect: int | None = None, at_most: int = 1_000
    ) -> list[bytes]:
        """Receive and ack until nothing is due; the bodies in the order they came.

        With ``expect``, an eventually visible transport is polled until that many came.
        Gives up after ``at_most``, so a transport that never forgets acked messages fails.
        """
        bodies: list[bytes] = []
        real_end = _REAL.monotonic() + self._visibility().total_seconds()
        while True:
            delivery = self.receive_one(channel)
            if delivery is not None:
                bodies.append(delivery.message.body)
                self.ack(delivery)
                if len(bodies) > at_most:
                    raise AssertionError(
                        f"{self.name} still delivered messages on {channel!r} after {at_most} "
                        f"were acknowledged"
                    )
                continue
            if expect is None or len(bodies) >= expect or _REAL.monotonic() >= real_end:
                return bodies
            self.pause(self.timing.poll)

    def _visibility(self) -> timedelta:
        eventual = self.capabilities.visibility == "eventual"
        return self.timing.visibility if eventual else timedelta(0)

    # Context manager -------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close_all()


_NO_REOPEN = (
    "this check needs `reopen` on the harness: a callable that opens a new transport on the "
    "same storage, as a restarted process (or a second consumer's connection) would"
)


def _counter() -> Callable[[], str]:
    names = itertools.count()

    def make_channel() -> str:
        return f"conformance-{next(names)}"

    return make_channel


def _show(delivery: Delivery) -> str:
    body = delivery.message.body
    shown = body if len(body) <= 40 else body[:40] + b"..."
    return f"{shown!r} (delivery {delivery.delivery_count})"
