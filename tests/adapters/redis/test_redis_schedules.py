"""RedisScheduleStore: two workers on one schedule run each tick once; a restart catches up."""

from __future__ import annotations

import pytest

from conveyor.core.scheduling import CatchUp
from conveyor_redis import RedisScheduleStore
from pytest_conveyor.schedule_claims import (
    StoreFactory,
    check_each_tick_claimed_once,
    check_restart_catches_up,
    check_restart_does_not_fire_again,
)


@pytest.fixture
def stores(redis_url: str, prefix: str) -> StoreFactory:
    return lambda: RedisScheduleStore(redis_url, prefix=prefix)


def test_two_workers_run_each_of_100_ticks_exactly_once(stores: StoreFactory) -> None:
    check_each_tick_claimed_once(stores, count=100)


@pytest.mark.parametrize("catch_up", ["all", "once", "skip"])
def test_a_restart_catches_up_from_the_stored_tick(stores: StoreFactory, catch_up: CatchUp) -> None:
    check_restart_catches_up(stores, catch_up)


def test_a_restart_does_not_fire_an_every_job_again(stores: StoreFactory) -> None:
    check_restart_does_not_fire_again(stores)
