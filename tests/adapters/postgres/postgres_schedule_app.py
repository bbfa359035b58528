"""A scheduled worker for test_postgres_schedules.py (imported by ``conveyor run``, not collected).

One schedule, every 100 ms with every missed tick run (``catch_up="all"``), its state in
PostgreSQL (``$DATABASE_URL``, schema ``$SCHEDULE_SCHEMA``). Each tick records its planned
instant and the worker's pid in ``<schema>.ticks``, so the test can check that every tick ran
exactly once.
"""

from __future__ import annotations

import os
from datetime import timedelta

import psycopg

from conveyor import Context, Messaging, SystemClock, scheduled
from conveyor_postgres import PostgresScheduleStore


def build() -> Messaging:
    dsn, schema = os.environ["DATABASE_URL"], os.environ["SCHEDULE_SCHEMA"]
    effects = psycopg.connect(dsn, autocommit=True)

    @scheduled(every=timedelta(milliseconds=100), catch_up="all", endpoint_id="tick")
    def tick(ctx: Context) -> None:
        effects.execute(
            f"INSERT INTO {schema}.ticks (planned, worker) VALUES (%s, %s)",
            (ctx.message.payload, os.getpid()),
        )

    store = PostgresScheduleStore(dsn, schema=schema)
    return Messaging([tick], [], clock=SystemClock(), schedule_store=store)
