"""Checks for a durable schedule store: each tick claimed once, catch-up from the stored tick.

Every :class:`~conveyor.ScheduleStore` an adapter provides keeps the same promise: several
workers sharing it run each tick of a schedule exactly once, and a worker started after a stop
plans from the stored tick (so ``catch_up`` decides what runs, and an ``every=`` job does not
fire again at each restart). These checks state that promise once, on virtual time, with two
``Messaging`` instances (each with its own clock) standing for two workers. They are pytest-free
so that the tests of a third-party store can run them too; each takes a factory returning a new
store on the shared state (a new connection, as a second worker would open).
:func:`check_real_ticks` judges what real worker processes ran.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from conveyor import Messaging, RecordKind, ScheduleStore, VirtualClock, scheduled
from conveyor.core.scheduling import CatchUp

__all__ = [
    "ENDPOINT",
    "HOUR",
    "START",
    "StoreFactory",
    "check_each_tick_claimed_once",
    "check_real_ticks",
    "check_restart_catches_up",
    "check_restart_does_not_fire_again",
    "hourly_worker",
    "ticks",
]

#: The first tick of the checks' schedule, and its period.
START = datetime(2026, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
#: The scheduled endpoint's id, under which the store keeps its next tick.
ENDPOINT = "hourly"

#: Returns a new store on the shared state each time it is called.
StoreFactory = Callable[[], ScheduleStore]


def hourly_worker(store: ScheduleStore, at: datetime, catch_up: CatchUp = "once") -> Messaging:
    """A worker with one hourly schedule (endpoint :data:`ENDPOINT`) on a clock at ``at``."""

    @scheduled(every=HOUR, catch_up=catch_up, endpoint_id=ENDPOINT)
    def report() -> None: ...

    return Messaging([report], [], clock=VirtualClock(at), schedule_store=store)


def ticks(messaging: Messaging) -> list[datetime]:
    """The planned instants of the ticks this worker ran, in order."""
    planned: list[datetime] = []
    for record in messaging.journal.records:
        if record.kind is RecordKind.TICKED:
            assert isinstance(record.payload, datetime), f"a tick's payload is {record.payload!r}"
            planned.append(record.payload)
    return planned


def check_each_tick_claimed_once(stores: StoreFactory, *, count: int = 100, seed: int = 17) -> None:
    """Two workers step through ``count`` hourly ticks, in a shuffled order at each tick: every
    tick runs, and runs in exactly one of them."""
    first, second = hourly_worker(stores(), START), hourly_worker(stores(), START)
    order = random.Random(seed)
    for hour in range(count):
        pair = [first, second]
        order.shuffle(pair)  # either worker may look first at each tick
        for each in pair:
            each.advance_to(START + hour * HOUR)
    counted = Counter([*ticks(first), *ticks(second)])
    expected = [START + hour * HOUR for hour in range(count)]
    missing = sorted(set(expected) - set(counted))
    twice = sorted(tick for tick, runs in counted.items() if runs > 1)
    assert not missing, f"{len(missing)} ticks never ran, the first at {missing[0]}"
    assert not twice, f"{len(twice)} ticks ran in both workers, the first at {twice[0]}"
    assert sorted(counted) == expected, f"ticks ran that were never planned: {sorted(counted)}"
    assert ticks(first), "the first worker ran no tick: the shuffle never let it claim one"
    assert ticks(second), "the second worker ran no tick: the shuffle never let it claim one"


def check_restart_catches_up(stores: StoreFactory, catch_up: CatchUp) -> None:
    """A worker ran the first tick and stopped; one started 3.5 hours later plans from the
    stored tick, and runs what ``catch_up`` says of the three it missed."""
    expected = {
        "all": [START + HOUR, START + 2 * HOUR, START + 3 * HOUR],
        "once": [START + HOUR],
        "skip": [],
    }[catch_up]
    before = hourly_worker(stores(), START, catch_up)
    before.run_until_idle()
    assert ticks(before) == [START], f"the first worker ran {ticks(before)}, not the first tick"
    before.close()
    after = hourly_worker(stores(), START + 3 * HOUR + timedelta(minutes=30), catch_up)
    due = after.driver.scheduled[ENDPOINT].due
    assert due == START + HOUR, f"after the restart the next tick is {due}, not the stored one"
    after.run_until_idle()
    assert ticks(after) == expected, f"catch_up={catch_up!r} ran {ticks(after)}, not {expected}"
    due = after.driver.scheduled[ENDPOINT].due
    assert due == START + 4 * HOUR, f"after catching up the next tick is {due}"
    after.close()


def check_restart_does_not_fire_again(stores: StoreFactory) -> None:
    """A worker restarted ten minutes after a tick waits for the next one instead of ticking."""
    before = hourly_worker(stores(), START)
    before.run_until_idle()
    before.close()
    after = hourly_worker(stores(), START + timedelta(minutes=10))
    after.run_until_idle()
    assert ticks(after) == [], f"the restarted worker ticked at once: {ticks(after)}"
    after.advance(timedelta(minutes=50))
    assert ticks(after) == [START + HOUR], f"the restarted worker ran {ticks(after)}"
    after.close()


def check_real_ticks(planned: Sequence[datetime], every: timedelta, *, at_least: int) -> None:
    """The ticks several real worker processes ran (their planned instants, from every worker):
    at least ``at_least``, none twice, none skipped between the first and the last."""
    ordered = sorted(planned)
    assert len(ordered) >= at_least, f"only {len(ordered)} ticks ran, expected {at_least} or more"
    twice = sorted(tick for tick, runs in Counter(ordered).items() if runs > 1)
    assert not twice, f"{len(twice)} ticks ran twice, the first at {twice[0]}"
    gaps = [(a, b) for a, b in pairwise(ordered) if b - a != every]
    assert not gaps, f"a tick was lost or misplanned: {gaps[0][1]} followed {gaps[0][0]}"
