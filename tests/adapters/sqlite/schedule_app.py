"""A scheduled worker for test_sqlite_schedules.py (imported by ``conveyor run``, not collected).

One schedule, every 100 ms with every missed tick run (``catch_up="all"``), its state in
``$SCHEDULE_DB``. Each tick records its planned instant and the worker's pid in
``$SCHEDULE_EFFECTS``, so the test can check that every tick ran exactly once.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import timedelta

from conveyor import Context, Messaging, SystemClock, scheduled
from conveyor_sqlite import SqliteScheduleStore


def create_effects(path: str) -> None:
    with sqlite3.connect(path, isolation_level=None) as connection:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("CREATE TABLE IF NOT EXISTS ticks (planned TEXT, worker INTEGER)")


def build() -> Messaging:
    effects = sqlite3.connect(
        os.environ["SCHEDULE_EFFECTS"], isolation_level=None, timeout=30, check_same_thread=False
    )

    @scheduled(every=timedelta(milliseconds=100), catch_up="all", endpoint_id="tick")
    def tick(ctx: Context) -> None:
        planned = ctx.message.payload.isoformat()
        effects.execute("INSERT INTO ticks VALUES (?, ?)", (planned, os.getpid()))

    store = SqliteScheduleStore(os.environ["SCHEDULE_DB"], synchronous="NORMAL")
    return Messaging([tick], [], clock=SystemClock(), schedule_store=store)
