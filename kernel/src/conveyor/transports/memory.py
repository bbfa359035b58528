"""The in-memory transport: a real channel that happens to live in a dict.

DESIGN rule 3: tests change when things run, never what runs. So :class:`MemoryTransport`
behaves like a broker, not like a list: messages are copied on the way in and out, leases run out
on the injected clock and the message comes back with a higher delivery count, delays and
priority are honoured, stale receipts are refused, and it passes the same conformance suite
(``pytest_conveyor.conformance``) as every adapter.

It is also what the kernel benchmark pushes a million messages through, so each channel is laid
out for O(1) in the common case and little memory per message:

* due messages wait in one :class:`_Level` per priority. A message sent due goes to the back of
  the level's ``fresh`` deque (it has the highest sequence number yet, so the deque stays in send
  order for free); a message that comes back (lease expired, released, delay over) goes into the
  level's ``returned`` heap keyed by its original sequence number, so it regains its FIFO place;
* messages that are not due yet wait in a :class:`~conveyor.core.timers.TimerQueue` until their
  ``available_at``; leased ones wait in a second one until their lease runs out. A lease is
  nearly always settled long before that, so its queue holds little more than the deliveries in
  flight, and taking and settling a lease never sifts through every delayed message's timer
  (a million of them in the timers benchmark);
* a due message that was never delivered waits packed into one ``bytes`` object
  (:mod:`conveyor.transports.packed`: its sequence number, header values and body); it becomes
  an :class:`_Entry` when it is received. Every other stored message is one slotted
  :class:`_Entry`, its header values a tuple. The tuple of header names is shared by every
  message that has the same names (the kernel's messages on a channel all do), so a queued
  message holds no copy of them.
"""

from __future__ import annotations

import heapq
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from itertools import count

from conveyor.core.clock import Clock, ensure_aware
from conveyor.core.errors import MessageTooLarge, StaleReceipt, TransportClosed
from conveyor.core.instants import END_OF_TIME, saturating_later
from conveyor.core.timers import Timer, TimerQueue
from conveyor.transports.packed import SEPARATOR, pack, seq_of, unpack
from conveyor.transports.seam import Capabilities, ChannelOptions, Delivery, WireMessage

__all__ = ["MemoryTransport"]

_READY, _LEASED, _WAITING, _GONE = range(4)
"""An entry's state: receivable, leased to a consumer, held until a due time, acknowledged."""

_NO_TIME = timedelta(0)

_SHARED_NAME_SETS = 256
"""How many distinct sets of header names one transport shares among its messages."""


class _Entry:
    """One stored message and where it is in its life (mutable, one per message: keep it small)."""

    __slots__ = (
        "body",
        "deliveries",
        "names",
        "priority",
        "queued",
        "seq",
        "state",
        "timer",
        "values",
    )

    def __init__(
        self,
        body: bytes,
        names: tuple[str, ...],
        values: Sequence[str],
        priority: int,
        seq: int,
    ) -> None:
        self.body = body
        self.names = names  # shared with other entries: never changed
        self.values = values
        self.priority = priority
        self.seq = seq
        self.deliveries = 0
        self.state = _READY
        self.queued = False  # physically in a level's deque or heap, possibly as a stale item
        self.timer: Timer[_Entry] | None = None


class _Level:
    """The due messages of one priority, in send order."""

    __slots__ = ("fresh", "name_sets", "priority", "returned")

    def __init__(self, priority: int, name_sets: list[tuple[str, ...]]) -> None:
        self.priority = priority
        self.name_sets = name_sets  # the transport's shared header-name sets, by index
        self.fresh: deque[bytes | _Entry] = deque()  # packed, or an entry that did not pack
        self.returned: list[tuple[int, _Entry]] = []

    def pop(self) -> _Entry | None:
        """The receivable entry sent first, or None; stale heap items are swept on the way."""
        fresh, returned = self.fresh, self.returned
        if returned:
            self._sweep()
        if returned and (not fresh or returned[0][0] < _seq(fresh[0])):
            entry = heapq.heappop(returned)[1]
        elif fresh:
            item = fresh.popleft()
            if isinstance(item, _Entry):
                item.queued = False
                return item
            seq, names, values, body = unpack(item)
            return _Entry(body, self.name_sets[names], values, self.priority, seq)
        else:
            return None
        entry.queued = False
        return entry

    def __bool__(self) -> bool:
        self._sweep()
        return bool(self.fresh or self.returned)

    def _sweep(self) -> None:
        # Only "returned" can hold stale items: an entry in "fresh" was never delivered, so
        # nothing can ack or release it before it is popped.
        returned = self.returned
        while returned and returned[0][1].state != _READY:
            heapq.heappop(returned)[1].queued = False


class _Channel:
    """Everything one channel holds."""

    __slots__ = (
        "lease_timers",
        "leases",
        "levels",
        "live",
        "name_sets",
        "priorities",
        "timers",
        "wake_at",
    )

    def __init__(self, name_sets: list[tuple[str, ...]]) -> None:
        self.name_sets = name_sets
        self.levels: dict[int, _Level] = {}
        self.priorities: list[int] = []  # heap of -priority, one per level
        self.timers: TimerQueue[_Entry] = TimerQueue()  # delayed and released messages
        self.lease_timers: TimerQueue[_Entry] = TimerQueue()  # leased messages
        self.leases: dict[str, _Entry] = {}
        self.live = 0
        # No timer of either queue is due before this instant: a receive before it skips both
        # queues. A lower bound, lowered by every push (see ``hold``) and made exact again by
        # ``ready_due``; a cancelled timer only makes it early, which costs one look.
        self.wake_at = END_OF_TIME

    def hold(self, queue: TimerQueue[_Entry], due: datetime, entry: _Entry) -> None:
        """Put ``entry`` on one of the timer queues until ``due``."""
        entry.timer = queue.push(due, entry)
        self.wake_at = min(self.wake_at, due)

    def ready_due(self, now: datetime) -> None:
        """Make every message whose delay or lease ran out by ``now`` receivable again."""
        timers, lease_timers = self.timers, self.lease_timers
        while (due := timers.pop_due(now)) is not None:
            self.make_ready(due)
        while (expired := lease_timers.pop_due(now)) is not None:
            self.make_ready(expired)
        self.wake_at = self.next_timer_due() or END_OF_TIME

    def level(self, priority: int) -> _Level:
        level = self.levels.get(priority)
        if level is None:
            level = self.levels[priority] = _Level(priority, self.name_sets)
            heapq.heappush(self.priorities, -priority)
        return level

    def cancel_timer(self, entry: _Entry) -> None:
        """Cancel the entry's timer, in the queue that holds it (a leased entry's is a lease)."""
        if entry.timer is not None:
            queue = self.lease_timers if entry.state == _LEASED else self.timers
            queue.cancel(entry.timer)
            entry.timer = None

    def next_timer_due(self) -> datetime | None:
        """The earliest instant a delay or a lease runs out, or None when neither is pending."""
        delayed, leased = self.timers.peek_due(), self.lease_timers.peek_due()
        if delayed is None or leased is None:
            return leased if delayed is None else delayed
        return min(delayed, leased)

    def make_ready(self, entry: _Entry) -> None:
        """Make an entry receivable again at its original place among its priority."""
        entry.state = _READY
        entry.timer = None
        if not entry.queued:  # a stale item already sits at the right place otherwise
            entry.queued = True
            heapq.heappush(self.level(entry.priority).returned, (entry.seq, entry))

    def pop_ready(self) -> _Entry | None:
        """The next receivable entry: highest priority first, then send order.

        An empty level is dropped, except the last one: a channel of one priority (nearly
        every channel) would otherwise build and drop its level around each message that comes
        due alone, as every delayed message does.
        """
        levels, priorities = self.levels, self.priorities
        while priorities:
            entry = levels[-priorities[0]].pop()
            if entry is not None:
                return entry
            if len(priorities) == 1:
                return None
            del levels[-heapq.heappop(priorities)]
        return None

    def has_ready(self) -> bool:
        return any(self.levels.values())


class MemoryTransport:
    """An in-memory :class:`~conveyor.transports.seam.InspectableTransport` for any number of
    channels.

    Sending to or receiving from a channel that was never declared declares it, as a broker with
    automatic queue creation would; ``pending`` and ``next_due`` only look and never declare.
    It is safe for many threads: one lock guards every channel, and a receive that waits
    (on a real clock) wakes when another thread sends. ``send``, ``receive`` and ``ack`` run
    for every message, so they take the lock with ``acquire`` and ``release`` in a ``try``:
    a ``with`` costs twice as much (about a thousand instructions more each).

    Args:
        clock: where "now" comes from for delays and leases; a ``VirtualClock`` in tests.
        max_size: the largest message (body plus headers, in bytes) ``send`` accepts, to
            rehearse a broker's limit in tests; None for no limit.
    """

    __slots__ = (
        "_arrived",
        "_capabilities",
        "_channels",
        "_clock",
        "_closed",
        "_lock",
        "_max_size",
        "_name_sets",
        "_names",
        "_seq",
        "_waiters",
    )

    def __init__(self, clock: Clock, *, max_size: int | None = None) -> None:
        if max_size is not None and max_size < 1:
            raise ValueError(f"max_size must be a positive number of bytes or None, not {max_size}")
        self._clock = clock
        self._max_size = max_size
        self._capabilities = Capabilities(
            delay=True,
            max_delay=None,
            delay_precision=timedelta(milliseconds=1),
            priority=True,
            ttl=False,
            ordering="fifo",
            max_size=max_size,
            durable=False,
        )
        self._channels: dict[str, _Channel] = {}
        self._seq = count(1)
        # One copy of each set of header names, and its index (what a packed message holds).
        self._names: dict[tuple[str, ...], int] = {}
        self._name_sets: list[tuple[str, ...]] = []
        self._closed = False
        # One lock for every channel: a Messaging shared by threads sends and consumes here.
        # Every operation takes the plain lock (its ``with`` is C code, where a Condition's is
        # two Python calls per operation); only a waiting receive and the wake-ups that end its
        # wait go through the Condition built on the same lock.
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._waiters = 0

    @property
    def capabilities(self) -> Capabilities:
        """Delay (1 ms, no maximum), priority, FIFO; no TTL, not durable. Readable after close."""
        return self._capabilities

    def declare(self, options: ChannelOptions) -> None:
        """Create the channel if it does not exist; messages already on it stay."""
        with self._lock:
            if self._closed:
                raise self._closed_error("declare")
            self._channel(options.name)

    def send(
        self,
        channel: str,
        message: WireMessage,
        *,
        available_at: datetime | None = None,
        priority: int = 0,
        expires_at: datetime | None = None,
    ) -> None:
        """Store a copy of ``message``; it is not received before ``available_at``.

        ``expires_at`` is accepted and not enforced: ``capabilities.ttl`` is False, so the kernel
        checks expiry on receipt.

        Raises:
            MessageTooLarge: the message is over ``max_size``.
            TransportClosed: after :meth:`close`.
            TypeError: the body is not bytes or a header is not a string, which no broker takes.
        """
        body = message.body
        if type(body) is not bytes:  # bytes are immutable already: sharing them is a copy
            body = _copy_body(body)
        names, values, joined, shared = self._split(message.headers)
        if self._max_size is not None and message.size > self._max_size:
            raise MessageTooLarge(
                f"message of {message.size} bytes (body plus headers) is over this "
                f"MemoryTransport's max_size of {self._max_size} bytes on channel {channel!r}; "
                f"send a smaller message, or build the transport with a larger max_size."
            )
        self._lock.acquire()  # not ``with``: see the class docstring
        try:
            if self._closed:
                raise self._closed_error("send")
            held_until = None if available_at is None else self._held_until(available_at)
            seq = next(self._seq)
            ch = self._channels.get(channel) or self._channel(channel)
            ch.live += 1
            if held_until is None and shared is not None:
                packed = pack(seq, shared, values, joined, body)
                if packed is not None:  # the common case: one small object per message
                    level = ch.levels.get(priority)  # not ``or``: an empty level is falsy
                    (ch.level(priority) if level is None else level).fresh.append(packed)
                    if self._waiters:
                        self._arrived.notify_all()
                    return
            entry = _Entry(body, names, values, priority, seq)
            if held_until is not None:
                entry.state = _WAITING
                ch.hold(ch.timers, held_until, entry)
            else:
                entry.queued = True
                ch.level(priority).fresh.append(entry)
                if self._waiters:
                    self._arrived.notify_all()
        finally:
            self._lock.release()

    def receive(
        self,
        channel: str,
        *,
        lease: timedelta,
        max_messages: int = 1,
        wait: timedelta | None = None,
    ) -> list[Delivery]:
        """Lease up to ``max_messages`` due messages (highest priority, then send order).

        With ``wait`` (a consumer on a real clock), block up to that long for a message sent
        by another thread; the kernel never passes ``wait`` on a virtual clock.

        Raises:
            ValueError: ``lease`` is not positive, or ``max_messages`` is below 1.
            TransportClosed: after :meth:`close`.
        """
        if lease <= _NO_TIME:
            raise ValueError(
                f"lease must be positive, not {lease}; a lease is how long handling may take"
            )
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, not {max_messages}")
        self._lock.acquire()  # not ``with``: see the class docstring
        try:
            if self._closed:
                raise self._closed_error("receive")
            taken = self._take(channel, lease, max_messages)
            if taken or wait is None or wait <= _NO_TIME:
                return taken
            due = self.next_due_locked(channel)
            now = self._clock.now()
            timeout = wait if due is None else min(wait, max(due - now, _NO_TIME))
            self._waiters += 1
            try:
                self._arrived.wait(timeout.total_seconds())
            finally:
                self._waiters -= 1
            if self._closed:
                raise self._closed_error("receive")
            return self._take(channel, lease, max_messages)
        finally:
            self._lock.release()

    def _take(self, channel: str, lease: timedelta, max_messages: int) -> list[Delivery]:
        ch = self._channels.get(channel) or self._channel(channel)
        now = self._clock.now()
        if now >= ch.wake_at:
            ch.ready_due(now)
        taken: list[Delivery] = []
        while len(taken) < max_messages:
            entry = ch.pop_ready()
            if entry is None:
                break
            if entry.deliveries:  # the previous lease's receipt, if nobody settled it, is stale
                ch.leases.pop(_receipt(channel, entry.seq, entry.deliveries), None)
            entry.deliveries += 1
            receipt = f"{channel}:{entry.seq}:{entry.deliveries}"  # ``_receipt``, inline
            ch.leases[receipt] = entry
            entry.state = _LEASED
            try:
                until = now + lease
            except OverflowError:  # a clock far in the future: the lease lasts to the end of time
                until = saturating_later(now, lease)
            entry.timer = ch.lease_timers.push(until, entry)  # ``ch.hold``, one call less
            ch.wake_at = min(ch.wake_at, until)
            taken.append(
                Delivery(
                    channel,
                    WireMessage(entry.body, dict(zip(entry.names, entry.values, strict=True))),
                    receipt,
                    entry.deliveries,
                )
            )
        return taken

    def ack(self, delivery: Delivery) -> None:
        """Forget the delivered message for good.

        A lease that ran out can still be acknowledged until the message is delivered again.

        Raises:
            StaleReceipt: the receipt was settled already, or is stale, or is not ours.
            TransportClosed: after :meth:`close`.
        """
        self._lock.acquire()  # not ``with``: see the class docstring
        try:
            if self._closed:
                raise self._closed_error("ack")
            ch, entry = self._settle(delivery, "acknowledge")
            entry.state = _GONE
            ch.live -= 1
        finally:
            self._lock.release()

    def release(self, delivery: Delivery, *, available_at: datetime | None = None) -> None:
        """Give the message back, receivable from ``available_at`` (or now) at its old place.

        Raises:
            StaleReceipt: the receipt was settled already, or is stale, or is not ours.
            TransportClosed: after :meth:`close`.
        """
        with self._lock:
            if self._closed:
                raise self._closed_error("release")
            held_until = self._held_until(
                available_at
            )  # before settling: a bad instant loses nothing
            ch, entry = self._settle(delivery, "release")
            if held_until is not None:
                entry.state = _WAITING
                ch.hold(ch.timers, held_until, entry)
            else:
                ch.make_ready(entry)
                if self._waiters:
                    self._arrived.notify_all()

    def renew(self, delivery: Delivery, *, lease: timedelta) -> None:
        """Extend the lease of ``delivery`` to ``lease`` from now.

        Raises:
            StaleReceipt: the lease ran out and the message was delivered again, or it was
                settled already.
            TransportClosed: after :meth:`close`.
        """
        if lease <= _NO_TIME:
            raise ValueError(f"lease must be positive, not {lease}")
        with self._lock:
            if self._closed:
                raise self._closed_error("renew")
            ch = self._channels.get(delivery.channel)
            entry = ch.leases.get(delivery.receipt) if ch is not None else None
            if ch is None or entry is None:
                raise StaleReceipt(self._unknown_receipt(delivery, "renew"))
            # A lease that ran out but was not delivered again yet is renewed as before: its
            # timer then makes the message receivable again when the new lease would end.
            queue = ch.lease_timers if entry.state == _LEASED else ch.timers
            ch.cancel_timer(entry)
            ch.hold(queue, saturating_later(self._clock.now(), lease), entry)

    def close(self) -> None:
        """Drop every message. Later calls raise ``TransportClosed``; closing again is a no-op."""
        with self._lock:
            self._closed = True
            self._channels.clear()
            self._arrived.notify_all()

    def pending(self, channel: str) -> int:
        """Messages stored on the channel: due, delayed and leased alike."""
        with self._lock:
            if self._closed:
                raise self._closed_error("count pending messages")
            ch = self._channels.get(channel)
            return ch.live if ch is not None else 0

    def next_due(self, channel: str) -> datetime | None:
        """The earliest instant a message on the channel is receivable, or None when it is empty.

        A leased message counts from its lease expiry; a due message gives an instant at or
        before now (its due time if it is still waiting to be swept in, else now).
        """
        with self._lock:
            if self._closed:
                raise self._closed_error("look up the next due time")
            return self.next_due_locked(channel)

    def next_due_locked(self, channel: str) -> datetime | None:
        ch = self._channels.get(channel)
        if ch is None:
            return None
        due = ch.next_timer_due()
        if ch.has_ready():
            now = self._clock.now()
            return now if due is None or due > now else due
        return due

    def __repr__(self) -> str:
        if self._closed:
            return "MemoryTransport(closed)"
        pending = sum(ch.live for ch in self._channels.values())
        return f"MemoryTransport(channels={len(self._channels)}, pending={pending})"

    def _split(
        self, headers: Mapping[str, str]
    ) -> tuple[tuple[str, ...], tuple[str, ...], str, int | None]:
        """Copy headers into (names, values, the values joined, the names' shared index).

        The names come back as the copy other messages share. At most ``_SHARED_NAME_SETS``
        name sets are kept (index None beyond them): an application whose header names vary
        without end pays for its own copy of the names, as every message did before.
        """
        names, values = tuple(headers), tuple(headers.values())
        joined = _check_strings(headers, names, values)
        index = self._names.get(names)
        if index is not None:
            return self._name_sets[index], values, joined, index
        with self._lock:  # two senders must not give one index to two name sets
            index = self._names.get(names)
            if index is None and len(self._name_sets) < _SHARED_NAME_SETS:
                index = self._names[names] = len(self._name_sets)
                self._name_sets.append(names)
        if index is None:
            return names, values, joined, None
        return self._name_sets[index], values, joined, index

    def _channel(self, name: str) -> _Channel:
        ch = self._channels.get(name)
        if ch is None:
            ch = self._channels[name] = _Channel(self._name_sets)
        return ch

    def _held_until(self, available_at: datetime | None) -> datetime | None:
        """``available_at`` in UTC if it is still ahead of now; None when the message is due."""
        if available_at is None:
            return None
        available_at = ensure_aware(available_at, what="available_at")
        return available_at if available_at > self._clock.now() else None

    def _closed_error(self, operation: str) -> TransportClosed:
        return TransportClosed(
            f"cannot {operation}: this MemoryTransport was closed, and a closed transport "
            f"holds nothing. Build a new MemoryTransport, or close it only at shutdown."
        )

    def _settle(self, delivery: Delivery, verb: str) -> tuple[_Channel, _Entry]:
        """Take the lease a receipt names away from its entry, or explain why there is none."""
        ch = self._channels.get(delivery.channel)
        entry = ch.leases.pop(delivery.receipt, None) if ch is not None else None
        if ch is None or entry is None:
            raise StaleReceipt(self._unknown_receipt(delivery, verb))
        timer = entry.timer
        if timer is not None:  # ``ch.cancel_timer``, inline: every delivery is settled
            (ch.lease_timers if entry.state == _LEASED else ch.timers).cancel(timer)
            entry.timer = None
        return ch, entry

    def _unknown_receipt(self, delivery: Delivery, verb: str) -> str:
        receipt, channel = delivery.receipt, delivery.channel
        ch = self._channels.get(channel)
        prefix = f"{channel}:"
        fields = receipt[len(prefix) :] if receipt.startswith(prefix) else ""
        seq, _, count_text = fields.partition(":")
        if ch is not None and seq.isdigit() and count_text.isdigit():
            for current_receipt, entry in ch.leases.items():
                if entry.seq == int(seq):
                    return (
                        f"cannot {verb} delivery {receipt!r} on channel {channel!r}: the receipt "
                        f"is stale. Its lease ran out and the message was delivered again "
                        f"(delivery {entry.deliveries}, receipt {current_receipt!r}), so only that "
                        f"delivery can settle it. Lease for longer than handling takes."
                    )
        return (
            f"cannot {verb} delivery {receipt!r} on channel {channel!r}: this MemoryTransport "
            f"holds no lease with that receipt. It was acknowledged or released already, its "
            f"lease ran out and a later delivery settled it, or it came from another transport. "
            f"Settle each delivery exactly once, on the transport that delivered it."
        )


def _receipt(channel: str, seq: int, deliveries: int) -> str:
    return f"{channel}:{seq}:{deliveries}"


def _copy_body(body: object) -> bytes:
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    raise TypeError(
        f"WireMessage.body must be bytes, not {type(body).__name__}; "
        f"encode it with the codec first."
    )


def _seq(item: bytes | _Entry) -> int:
    return item.seq if isinstance(item, _Entry) else seq_of(item)


def _check_strings(
    headers: Mapping[str, str], names: tuple[str, ...], values: tuple[str, ...]
) -> str:
    """Refuse headers that are not strings, naming them: no broker takes anything else.

    Returns the values joined by the packing separator (the check's by-product).
    """
    try:
        "".join(names)  # the cheapest "every part is a str" check: C speed, on the hot path
        return SEPARATOR.join(values)
    except TypeError:
        wrong = {
            k: v for k, v in headers.items() if not isinstance(k, str) or not isinstance(v, str)
        }
        raise TypeError(
            f"WireMessage headers must map strings to strings, which every broker takes; "
            f"got {wrong!r}. Convert the values with str() before sending."
        ) from None
