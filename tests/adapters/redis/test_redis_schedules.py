"""RedisScheduleStore: two workers on one schedule run each tick once; a restart catches up."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from conveyor import Messaging, RecordKind, VirtualClock, scheduled
from conveyor.core.scheduling import CatchUp
from conveyor_redis import RedisScheduleStore

START = datetime(2026, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def worker(url: str, prefix: str, at: datetime, catch_up: CatchUp = "once") -> Messaging:
    @scheduled(every=HOUR, catch_up=catch_up, endpoint_id="hourly")
    def report() -> None: ...

    store = RedisScheduleStore(url, prefix=prefix)
    return Messaging([report], [], clock=VirtualClock(at), schedule_store=store)


def ticks(messaging: Messaging) -> list[datetime]:
    return [r.payload for r in messaging.journal.records if r.kind is RecordKind.TICKED]


def test_two_workers_run_each_of_100_ticks_exactly_once(redis_url: str, prefix: str) -> None:
    first, second = worker(redis_url, prefix, START), worker(redis_url, prefix, START)
    order = random.Random(17)
    for hour in range(100):
        pair = [first, second]
        order.shuffle(pair)
        for each in pair:
            each.advance_to(START + hour * HOUR)
    counted = Counter([*ticks(first), *ticks(second)])
    assert sorted(counted) == [START + hour * HOUR for hour in range(100)]
    assert set(counted.values()) == {1}


def test_a_restart_catches_up_from_the_stored_tick(redis_url: str, prefix: str) -> None:
    before = worker(redis_url, prefix, START, "all")
    before.run_until_idle()
    after = worker(redis_url, prefix, START + 3 * HOUR + timedelta(minutes=30), "all")
    assert after.driver.scheduled["hourly"].due == START + HOUR
    after.run_until_idle()
    assert ticks(after) == [START + HOUR, START + 2 * HOUR, START + 3 * HOUR]
