"""What ``conveyor list`` shows of each consumer: its load, dead letters and next due time.

A channel's figures come from its broker where the transport is a ``MeasurableTransport``
(pending, in flight, the oldest waiting message's age), else from an ``InspectableTransport``
(pending only); a schedule's next due time from its schedule store. What cannot be told is
shown as "-", never as 0. Kept apart from ``conveyor.cli.format``, which holds the text shared
by every command.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from conveyor.cli.format import table, when
from conveyor.stores.dead_letters import DeadLetter
from conveyor.transports.dynamic import DynamicTransport, InspectableDynamicTransport
from conveyor.transports.seam import MeasurableTransport, Transport

if TYPE_CHECKING:
    from conveyor.drivers.messaging import Messaging

__all__ = [
    "ConsumerInfo",
    "consumer_info",
    "consumer_table",
    "consumer_to_json",
    "dynamic_info",
    "age",
]


@dataclass(frozen=True, slots=True)
class ConsumerInfo:
    """One runnable consumer as ``conveyor list`` shows it.

    Attributes:
        name: what ``conveyor run`` takes.
        kind: "channel", "dynamic" (a dynamic channel) or "scheduled".
        pending: messages waiting on the channel (due or delayed; leased ones too where the
            transport cannot tell them apart); None when it cannot say (or scheduled).
        next_due: when the consumer next has work; None when nothing is planned or unknown.
        detail: the schedule of a scheduled endpoint; the transport of a channel; the
            strategies of a dynamic channel.
        targets: a dynamic channel's concrete channels (kind "target"), listed under it.
        dead_letters: dead letters in the store from this channel (or scheduled endpoint);
            None where they are not counted (a dynamic channel's targets).
        in_flight: messages leased to a consumer now; None when the transport cannot say.
        oldest_age: how long the longest-waiting receivable message has waited; None when
            none waits or the transport cannot say.
    """

    name: str
    kind: str
    pending: int | None
    next_due: datetime | None
    detail: str
    targets: tuple[ConsumerInfo, ...] = ()
    dead_letters: int | None = None
    in_flight: int | None = None
    oldest_age: timedelta | None = None


def consumer_info(
    messaging: Messaging, name: str, letters: Sequence[DeadLetter] = ()
) -> ConsumerInfo:
    """What ``conveyor list`` knows of one consumer; a non-inspectable broker shows ``?``.

    ``letters`` are the store's dead letters, counted per channel (per endpoint for a schedule).
    """
    found = _consumer_info(messaging, name)
    scheduled = found.kind == "scheduled"
    dead = sum(1 for d in letters if (d.endpoint_id if scheduled else d.channel) == name)
    return replace(found, dead_letters=dead)


def _consumer_info(messaging: Messaging, name: str) -> ConsumerInfo:
    runtime = messaging.runtimes.get(name)
    if runtime is None:
        endpoint = messaging.driver.scheduled[name]
        schedule = endpoint.spec.schedule
        detail = schedule.describe() if schedule is not None else ""
        return ConsumerInfo(name, "scheduled", None, endpoint.due, detail)
    transport = runtime.transport
    detail = type(transport).__qualname__ + (" (inline)" if runtime.inline else "")
    if runtime.router is not None:
        return dynamic_info(runtime.router)
    due = None if runtime.inspectable is None else runtime.inspectable.next_due(name)
    if runtime.measurable is not None:  # the broker's own reading: waiting and leased apart
        stats = runtime.measurable.stats(name)
        return ConsumerInfo(
            name,
            "channel",
            stats.pending,
            due,
            detail,
            in_flight=stats.in_flight,
            oldest_age=stats.oldest_age,
        )
    pending = None if runtime.inspectable is None else runtime.inspectable.pending(name)
    return ConsumerInfo(name, "channel", pending, due, detail)


def dynamic_info(router: DynamicTransport) -> ConsumerInfo:
    """A dynamic channel with its strategies, and each concrete channel behind it.

    A concrete channel on a ``MeasurableTransport`` shows its broker's figures; the dynamic
    channel sums its targets' counts and shows the oldest of their ages, when every target
    can tell them.
    """

    def info(
        name: str, kind: str, detail: str, targets: tuple[ConsumerInfo, ...] = ()
    ) -> ConsumerInfo:
        if isinstance(router, InspectableDynamicTransport):
            pending, due = router.pending(name), router.next_due(name)
            return ConsumerInfo(name, kind, pending, due, detail, targets)
        return ConsumerInfo(name, kind, None, None, detail, targets)

    targets = tuple(
        _measured(info(name, "target", type(transport).__qualname__), transport)
        for name in router.internal
        for transport in (router.transport_of(name),)
    )
    found = info(router.name, "dynamic", router.definition.describe_strategies(), targets)
    if not targets:
        return found
    return replace(
        found,
        pending=_total([t.pending for t in targets], found.pending),
        in_flight=_total([t.in_flight for t in targets], None),
        oldest_age=max((t.oldest_age for t in targets if t.oldest_age is not None), default=None),
    )


def _measured(found: ConsumerInfo, transport: Transport) -> ConsumerInfo:
    """``found`` with its broker's figures, if its transport is a ``MeasurableTransport``."""
    if not isinstance(transport, MeasurableTransport):
        return found
    stats = transport.stats(found.name)
    return replace(
        found, pending=stats.pending, in_flight=stats.in_flight, oldest_age=stats.oldest_age
    )


def _total(counts: Sequence[int | None], otherwise: int | None) -> int | None:
    """The sum of ``counts`` when every one is known, else ``otherwise``."""
    known = [count for count in counts if count is not None]
    return sum(known) if len(known) == len(counts) else otherwise


def consumer_table(consumers: Sequence[ConsumerInfo], now: datetime, width: int) -> list[str]:
    """``conveyor list``: name, kind, messages waiting and in flight, dead letters, the age of
    the oldest waiting message, next due time, schedule or transport.

    "-" marks what the transport cannot tell (or what a schedule does not have). A dynamic
    channel's concrete channels follow it, as rows of kind "target".
    """
    rows = [
        (
            c.name,
            c.kind,
            "-" if c.pending is None else c.pending,
            "-" if c.in_flight is None else c.in_flight,
            "-" if c.dead_letters is None else c.dead_letters,
            "-" if c.oldest_age is None else age(c.oldest_age),
            "now" if c.next_due is not None and c.next_due <= now else when(c.next_due),
            c.detail,
        )
        for consumer in consumers
        for c in (consumer, *consumer.targets)
    ]
    headers = (
        "NAME",
        "KIND",
        "PENDING",
        "IN FLIGHT",
        "DEAD",
        "OLDEST",
        "NEXT DUE (UTC)",
        "SCHEDULE / TRANSPORT",
    )
    return table(headers, rows, width)


def age(duration: timedelta) -> str:
    """A waiting time in its two largest units, as a column scans: ``45s``, ``3m05s``,
    ``2h10m``, ``3d04h``."""
    seconds = max(int(duration.total_seconds()), 0)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    if days:
        return f"{days}d{hour:02d}h"
    if hours:
        return f"{hours}h{minute:02d}m"
    if minutes:
        return f"{minutes}m{second:02d}s"
    return f"{second}s"


def consumer_to_json(consumer: ConsumerInfo) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "name": consumer.name,
        "kind": consumer.kind,
        "pending": consumer.pending,
        "in_flight": consumer.in_flight,
        "dead_letters": consumer.dead_letters,
        "oldest_age_seconds": (
            None if consumer.oldest_age is None else consumer.oldest_age.total_seconds()
        ),
        "next_due": consumer.next_due.isoformat() if consumer.next_due else None,
        "detail": consumer.detail,
    }
    if consumer.targets:
        shown["targets"] = [consumer_to_json(t) for t in consumer.targets]
    return shown
