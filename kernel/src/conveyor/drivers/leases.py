"""Keeping leases alive while handlers run, and saying so when a lease cannot be kept.

A timed lease (SQS visibility, Redis pending entries, the in-memory transport) runs out while a
slow handler is still working, and another consumer then handles the same message: at least
once, but silently twice. Where the transport can renew a lease (``RenewableTransport``), a
:class:`LeaseKeeper` renews every lease in its care each third of the lease, from one thread
for all the handlers of a process. Where it cannot, the keeper logs a warning naming the
endpoint and the channel once the handler has outlived its lease, with the fix (a longer lease
on the channel). A lease held by the connection (RabbitMQ) needs neither.

Only real time needs this: on virtual time a handler takes no time at all.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import count

from conveyor.core.clock import Clock
from conveyor.core.errors import ConveyorError
from conveyor.core.wire import Delivery, H
from conveyor.drivers.channel_runtime import AsyncChannelRuntime, ChannelRuntime

__all__ = ["AsyncLeaseKeeper", "LeaseKeeper", "outlived_lease"]

_LOG = logging.getLogger("conveyor")

_IDLE = timedelta(hours=1)
"""The longest the keeper thread sleeps."""


class LeaseKeeper:
    """Renews the leases of deliveries being handled, from one daemon thread, started lazily.

    Holding and releasing run on every consumed message, so they take no lock: each is one
    dictionary operation on ``_held`` (atomic under the interpreter lock), keyed by a number from
    a counter. The keeper thread works from a copy of ``_held`` and keeps what only it changes
    (when a renewed lease next needs a look) in a dictionary of its own. It wakes at least every
    shortest first look seen so far, so a new lease never needs to wake it: its first look comes
    no sooner than that. Only the first lease, or one looked at sooner than any before, takes the
    lock, to start the thread or shorten its sleep.
    """

    __slots__ = ("_changed", "_clock", "_held", "_keys", "_looks", "_shortest_look", "_thread")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        # key -> (runtime, delivery, since): written by hold and release only.
        self._held: dict[int, tuple[ChannelRuntime, Delivery, datetime]] = {}
        self._keys = count()
        # key -> when a lease the keeper renewed (or warned about) next needs a look: the keeper
        # thread's own. A lease not in it is first looked at ``runtime.first_look`` after since.
        self._looks: dict[int, datetime] = {}
        self._changed = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        # The shortest first look of any lease held so far: the keeper's longest sleep.
        self._shortest_look = _IDLE

    def hold(self, runtime: ChannelRuntime, delivery: Delivery, *, since: datetime) -> int | None:
        """Keep ``delivery``'s lease alive (or watch it) until :meth:`release`; None if not timed.

        An explicit pair rather than a context manager, because it runs on every consumed
        message and a generator costs more than the holding itself.

        Args:
            since: when handling started (now), read once by the caller.

        Returns:
            The key to :meth:`release` the lease with.
        """
        if not runtime.timed_lease:
            return None
        if runtime.first_look < self._shortest_look or self._thread is None:
            self._look_sooner(runtime.first_look)
        key = next(self._keys)
        self._held[key] = (runtime, delivery, since)
        return key

    def release(self, key: int | None) -> None:
        """Stop keeping a lease :meth:`hold` took (the delivery was settled or given back)."""
        if key is not None:
            self._held.pop(key, None)

    def _look_sooner(self, first_look: timedelta) -> None:
        """Start the keeper thread, or make it look at least every ``first_look``."""
        with self._changed:
            if first_look < self._shortest_look:
                self._shortest_look = first_look
                self._changed.notify()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._keep, name="conveyor-leases", daemon=True
                )
                self._thread.start()

    def _keep(self) -> None:
        looks = self._looks
        while True:
            shortest = self._shortest_look
            now = self._clock.now()
            held = dict(self._held)  # a copy: hold and release change it meanwhile
            for gone in [key for key in looks if key not in held]:
                del looks[gone]
            soonest = now + shortest
            for key, (runtime, delivery, since) in held.items():
                look = looks.get(key) or since + runtime.first_look
                if look <= now:
                    look = looks[key] = self._attend(key, runtime, delivery, since, now)
                soonest = min(soonest, look)
            with self._changed:
                if self._shortest_look == shortest:  # else a shorter lease came: look again
                    wait = (soonest - self._clock.now()).total_seconds()
                    self._changed.wait(min(max(wait, 0.001), _IDLE.total_seconds()))

    def _attend(
        self, key: int, runtime: ChannelRuntime, delivery: Delivery, since: datetime, now: datetime
    ) -> datetime:
        """Renew the lease (or warn that it cannot be); when it next needs a look."""
        lease = runtime.definition.lease
        renewable = runtime.renewable
        never = datetime.max.replace(tzinfo=now.tzinfo)
        if renewable is None:
            outlived_lease(runtime, delivery, now - since)
            return never  # warn once
        try:
            renewable.renew(delivery, lease=lease)
        except ConveyorError as error:  # settled meanwhile, or the lease was already lost
            if key in self._held:  # else the handler finished between the look and the renewal
                _could_not_renew(runtime, delivery, error)
            return never
        return self._clock.now() + lease / 3


class AsyncLeaseKeeper:
    """The asyncio twin of :class:`LeaseKeeper`: one task per loop renews every held lease.

    Holding a delivery is a dict entry, not a task of its own, so the per-message cost on the
    hot path is two dictionary writes.
    """

    __slots__ = ("_clock", "_held", "_task", "_woken")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._held: dict[int, _AsyncHeld] = {}
        self._task: asyncio.Task[None] | None = None
        self._woken: asyncio.Event | None = None

    def hold(self, runtime: AsyncChannelRuntime, delivery: Delivery) -> int | None:
        """Start keeping ``delivery``'s lease; the key to :meth:`release`, None if not timed."""
        if not runtime.timed_lease:
            return None
        now = self._clock.now()
        look = now + runtime.first_look
        held = _AsyncHeld(runtime, delivery, look, now)
        self._held[id(held)] = held
        if self._task is None or self._task.done() or self._woken is None:
            self._woken = asyncio.Event()
            self._task = asyncio.ensure_future(self._keep(self._woken))
        elif len(self._held) == 1:
            self._woken.set()
        return id(held)

    def release(self, key: int | None) -> None:
        if key is not None:
            self._held.pop(key, None)
            if not self._held and self._woken is not None:
                self._woken.set()  # nothing left to keep: the task ends

    async def _keep(self, woken: asyncio.Event) -> None:
        """Renew what is held until nothing is: an idle keeper is no task at all, so none is
        left pending when the loop closes (``hold`` starts a new one)."""
        while self._held:
            now = self._clock.now()
            for key, held in list(self._held.items()):
                if held.next_look <= now:
                    await self._attend(key, held, now)
            soonest = min((h.next_look for h in self._held.values()), default=None)
            if soonest is None:
                return
            woken.clear()
            wait = (soonest - self._clock.now()).total_seconds()
            with suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), min(max(wait, 0.001), 3600.0))

    async def _attend(self, key: int, held: _AsyncHeld, now: datetime) -> None:
        runtime, delivery = held.runtime, held.delivery
        lease = runtime.definition.lease
        renewable = runtime.renewable
        never = datetime.max.replace(tzinfo=now.tzinfo)
        if renewable is None:
            outlived_lease(runtime, delivery, now - held.since)
            held.next_look = never  # warn once
            return
        try:
            await renewable.renew(delivery, lease=lease)
        except ConveyorError as error:  # settled meanwhile, or the lease was already lost
            if key in self._held:
                _could_not_renew(runtime, delivery, error)
            held.next_look = never
            return
        held.next_look = self._clock.now() + lease / 3


@dataclass(slots=True, eq=False)
class _AsyncHeld:
    runtime: AsyncChannelRuntime
    delivery: Delivery
    next_look: datetime
    since: datetime


def _could_not_renew(
    runtime: ChannelRuntime | AsyncChannelRuntime, delivery: Delivery, error: Exception
) -> None:
    _LOG.warning(
        "could not renew the lease of %s on channel %s (endpoint %s): %s",
        delivery.message.headers.get(H.ID, "?"),
        runtime.name,
        delivery.message.headers.get(H.ENDPOINT, "?"),
        error,
    )


def outlived_lease(
    runtime: ChannelRuntime | AsyncChannelRuntime, delivery: Delivery, running: timedelta
) -> None:
    """Warn that a handler outlived a lease its transport cannot renew."""
    _LOG.warning(
        "endpoint %s has been handling %s on channel %s for %s, longer than the channel's "
        "lease (%s), and %s cannot renew a lease: another consumer may receive the message "
        "and handle it again. Give the channel a longer lease, for example lease=timedelta("
        "minutes=5).",
        delivery.message.headers.get(H.ENDPOINT, "?"),
        delivery.message.headers.get(H.ID, "?"),
        runtime.name,
        running,
        runtime.definition.lease,
        type(runtime.transport).__name__,
    )
