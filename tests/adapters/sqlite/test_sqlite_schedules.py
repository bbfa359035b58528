"""Schedule state in SQLite: each tick claimed once across workers, catch-up after a restart.

On virtual time, two ``Messaging`` instances stand for two workers (each with its own clock)
sharing one ``SqliteScheduleStore``; then two real worker processes share one over real ticks.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from schedule_app import create_effects

from conveyor import (
    InMemoryScheduleStore,
    Messaging,
    RecordKind,
    ScheduleStore,
    VirtualClock,
    scheduled,
)
from conveyor.core.scheduling import CatchUp
from conveyor_sqlite import SqliteScheduleStore

HERE = Path(__file__).parent
START = datetime(2026, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def hourly(catch_up: CatchUp = "once") -> object:
    @scheduled(every=HOUR, catch_up=catch_up, endpoint_id="hourly")
    def report() -> None: ...

    return report


def worker(store: ScheduleStore, at: datetime, catch_up: CatchUp = "once") -> Messaging:
    return Messaging([hourly(catch_up)], [], clock=VirtualClock(at), schedule_store=store)


def ticks(messaging: Messaging) -> list[datetime]:
    return [r.payload for r in messaging.journal.records if r.kind is RecordKind.TICKED]


def test_two_workers_on_one_schedule_run_each_of_200_ticks_exactly_once(tmp_path: Path) -> None:
    first = worker(SqliteScheduleStore(tmp_path / "app.db"), START)
    second = worker(SqliteScheduleStore(tmp_path / "app.db"), START)
    order = random.Random(17)
    for hour in range(200):
        instant = START + hour * HOUR
        pair = [first, second]
        order.shuffle(pair)  # either worker may look first at each tick
        for each in pair:
            each.advance_to(instant)
    counted = Counter([*ticks(first), *ticks(second)])
    assert sorted(counted) == [START + hour * HOUR for hour in range(200)]
    assert set(counted.values()) == {1}
    assert ticks(first)  # both took part
    assert ticks(second)


def test_without_shared_state_both_workers_tick(tmp_path: Path) -> None:
    first, second = worker(InMemoryScheduleStore(), START), worker(InMemoryScheduleStore(), START)
    for each in (first, second):
        each.advance_to(START + 2 * HOUR)
    assert ticks(first) == ticks(second) == [START, START + HOUR, START + 2 * HOUR]


@pytest.mark.parametrize(
    ("catch_up", "expected"),
    [
        ("all", [START + HOUR, START + 2 * HOUR, START + 3 * HOUR]),
        ("once", [START + HOUR]),
        ("skip", []),
    ],
)
def test_a_restart_catches_up_from_the_stored_tick(
    tmp_path: Path, catch_up: CatchUp, expected: list[datetime]
) -> None:
    before = worker(SqliteScheduleStore(tmp_path / "app.db"), START, catch_up)
    before.run_until_idle()
    assert ticks(before) == [START]
    before.close()
    restarted_at = START + 3 * HOUR + timedelta(minutes=30)  # stopped for three and a half hours
    after = worker(SqliteScheduleStore(tmp_path / "app.db"), restarted_at, catch_up)
    assert after.driver.scheduled["hourly"].due == START + HOUR  # the stored tick, not "now"
    after.run_until_idle()
    assert ticks(after) == expected
    assert after.driver.scheduled["hourly"].due == START + 4 * HOUR


def test_a_restart_does_not_fire_an_every_job_again(tmp_path: Path) -> None:
    before = worker(SqliteScheduleStore(tmp_path / "app.db"), START)
    before.run_until_idle()
    after = worker(SqliteScheduleStore(tmp_path / "app.db"), START + timedelta(minutes=10))
    after.run_until_idle()
    assert ticks(after) == []
    after.advance(timedelta(minutes=50))
    assert ticks(after) == [START + HOUR]


def test_two_worker_processes_run_each_real_tick_exactly_once(tmp_path: Path) -> None:
    environment = {
        "SCHEDULE_DB": str(tmp_path / "app.db"),
        "SCHEDULE_EFFECTS": str(tmp_path / "effects.db"),
    }
    create_effects(environment["SCHEDULE_EFFECTS"])
    command = [sys.executable, "-m", "conveyor", "--app", "schedule_app:build"]
    workers = [
        subprocess.Popen(
            [*command, "run", "tick", "--time-limit", "3s"],
            cwd=HERE,
            env={**_environ(), **environment},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for process in workers:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
    with sqlite3.connect(environment["SCHEDULE_EFFECTS"]) as connection:
        rows = connection.execute("SELECT planned, worker FROM ticks").fetchall()
    planned = sorted(datetime.fromisoformat(instant) for instant, _ in rows)
    assert len(planned) >= 10
    assert len(set(planned)) == len(planned), "a tick ran twice"
    steps = {b - a for a, b in pairwise(planned)}
    assert steps == {timedelta(milliseconds=100)}, "a tick was lost"
    listed = subprocess.run(
        [*command, "list", "--json"],
        cwd=HERE,
        env={**_environ(), **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (tick,) = json.loads(listed.stdout)
    assert datetime.fromisoformat(tick["next_due"]) == planned[-1] + timedelta(milliseconds=100)


def _environ() -> dict[str, str]:
    return dict(os.environ)
