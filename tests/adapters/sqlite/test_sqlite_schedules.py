"""Schedule state in SQLite: each tick claimed once across workers, catch-up after a restart.

On virtual time, two ``Messaging`` instances stand for two workers (each with its own clock)
sharing one ``SqliteScheduleStore``; then two real worker processes share one over real ticks.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from schedule_app import create_effects

from conveyor import InMemoryScheduleStore
from conveyor.core.scheduling import CatchUp
from conveyor_sqlite import SqliteScheduleStore
from pytest_conveyor.schedule_claims import (
    HOUR,
    START,
    check_each_tick_claimed_once,
    check_real_ticks,
    check_restart_catches_up,
    check_restart_does_not_fire_again,
    hourly_worker,
    ticks,
)

HERE = Path(__file__).parent


def test_two_workers_on_one_schedule_run_each_of_200_ticks_exactly_once(tmp_path: Path) -> None:
    check_each_tick_claimed_once(lambda: SqliteScheduleStore(tmp_path / "app.db"), count=200)


def test_without_shared_state_both_workers_tick() -> None:
    first = hourly_worker(InMemoryScheduleStore(), START)
    second = hourly_worker(InMemoryScheduleStore(), START)
    for each in (first, second):
        each.advance_to(START + 2 * HOUR)
    assert ticks(first) == ticks(second) == [START, START + HOUR, START + 2 * HOUR]


def test_the_shared_check_fails_for_state_kept_per_worker() -> None:
    with pytest.raises(AssertionError, match="ran in both workers"):
        check_each_tick_claimed_once(InMemoryScheduleStore, count=3)


@pytest.mark.parametrize("catch_up", ["all", "once", "skip"])
def test_a_restart_catches_up_from_the_stored_tick(tmp_path: Path, catch_up: CatchUp) -> None:
    check_restart_catches_up(lambda: SqliteScheduleStore(tmp_path / "app.db"), catch_up)


def test_a_restart_does_not_fire_an_every_job_again(tmp_path: Path) -> None:
    check_restart_does_not_fire_again(lambda: SqliteScheduleStore(tmp_path / "app.db"))


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
    check_real_ticks(planned, timedelta(milliseconds=100), at_least=10)
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
