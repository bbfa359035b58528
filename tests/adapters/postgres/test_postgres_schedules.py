"""PostgresScheduleStore: each tick claimed once across workers, catch-up after a restart.

On virtual time, two ``Messaging`` instances stand for two workers (each with its own store
and pool on one schema); then two real worker processes share one schema over real ticks, and
``conveyor list`` shows the stored next tick.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from conveyor.core.scheduling import CatchUp
from conveyor_postgres import SCHEMA_VERSION, PostgresScheduleStore
from pytest_conveyor.schedule_claims import (
    StoreFactory,
    check_each_tick_claimed_once,
    check_real_ticks,
    check_restart_catches_up,
    check_restart_does_not_fire_again,
)

HERE = Path(__file__).parent
EVERY = timedelta(milliseconds=100)


@pytest.fixture
def stores(dsn: str, schema: str) -> Iterator[StoreFactory]:
    opened: list[PostgresScheduleStore] = []

    def open_store() -> PostgresScheduleStore:
        opened.append(PostgresScheduleStore(dsn, schema=schema))
        return opened[-1]

    yield open_store
    for store in opened:
        store.close()


def test_two_workers_run_each_of_100_ticks_exactly_once(stores: StoreFactory) -> None:
    check_each_tick_claimed_once(stores, count=100)


@pytest.mark.parametrize("catch_up", ["all", "once", "skip"])
def test_a_restart_catches_up_from_the_stored_tick(stores: StoreFactory, catch_up: CatchUp) -> None:
    check_restart_catches_up(stores, catch_up)


def test_a_restart_does_not_fire_an_every_job_again(stores: StoreFactory) -> None:
    check_restart_does_not_fire_again(stores)


def test_the_stored_tick_keeps_microseconds_and_reads_back_in_utc(stores: StoreFactory) -> None:
    store = stores()
    tick = datetime(2026, 3, 1, 12, 0, 0, 123457, tzinfo=UTC)
    assert store.claim("e", None, tick)
    assert not store.claim("e", None, tick + EVERY), "a second first claim succeeded"
    assert store.next_due("e") == tick
    assert store.next_due("e").tzinfo == UTC  # type: ignore[union-attr]
    wrong = tick + timedelta(microseconds=1)
    assert not store.claim("e", wrong, tick + EVERY), "a claim on a tick not stored succeeded"
    assert store.claim("e", tick, tick + EVERY)
    assert store.next_due("e") == tick + EVERY
    assert store.next_due("other") is None


def test_a_version_1_schema_gains_the_table(dsn: str, schema: str) -> None:
    PostgresScheduleStore(dsn, schema=schema).close()
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"DROP TABLE {schema}.schedules")
        connection.execute(f"UPDATE {schema}.schema_version SET version = 1")
    store = PostgresScheduleStore(dsn, schema=schema)
    try:
        assert store.claim("e", None, datetime(2026, 3, 1, tzinfo=UTC))
    finally:
        store.close()
    with psycopg.connect(dsn) as connection:
        row = connection.execute(f"SELECT version FROM {schema}.schema_version").fetchone()
    assert row == (SCHEMA_VERSION,) == (2,)


def test_two_worker_processes_run_each_real_tick_exactly_once(dsn: str, schema: str) -> None:
    PostgresScheduleStore(dsn, schema=schema).close()  # the schema, before the effects table
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"CREATE TABLE {schema}.ticks (planned timestamptz, worker integer)")
    environment = {**os.environ, "DATABASE_URL": dsn, "SCHEDULE_SCHEMA": schema}
    command = [sys.executable, "-m", "conveyor", "--app", "postgres_schedule_app:build"]
    workers = [
        subprocess.Popen(
            [*command, "run", "tick", "--time-limit", "3s"],
            cwd=HERE,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for process in workers:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(f"SELECT planned, worker FROM {schema}.ticks").fetchall()
    planned = sorted(instant.astimezone(UTC) for instant, _ in rows)
    check_real_ticks(planned, EVERY, at_least=10)
    listed = subprocess.run(
        [*command, "list", "--json"],
        cwd=HERE,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (tick,) = json.loads(listed.stdout)
    assert datetime.fromisoformat(tick["next_due"]) == planned[-1] + EVERY
