"""A worker app for test_sqlite_worker.py (imported by ``conveyor run``, not collected by pytest).

Three SQLite channels in ``$WORKER_DB``, one command type and handler each. Every handler
records what it handled in ``$WORKER_EFFECTS`` (one connection per thread), so the test can
count each message exactly once.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass

from conveyor import Messaging, SystemClock, asynchronous, command_handler
from conveyor_sqlite import SqliteChannel

CHANNELS = ("alpha", "beta", "gamma")


@dataclass(frozen=True)
class Alpha:
    number: int


@dataclass(frozen=True)
class Beta:
    number: int


@dataclass(frozen=True)
class Gamma:
    number: int


class Effects:
    """The application's own table of what it handled, one connection per worker thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.local = threading.local()

    def record(self, channel: str, number: int) -> None:
        connection: sqlite3.Connection | None = getattr(self.local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self.local.connection = connection
        connection.execute("INSERT INTO handled VALUES (?, ?)", (channel, number))


def create_effects(path: str) -> None:
    with sqlite3.connect(path, isolation_level=None) as connection:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("CREATE TABLE IF NOT EXISTS handled (channel TEXT, number INTEGER)")


def build(effects_path: str | None = None) -> Messaging:
    effects = Effects(effects_path or os.environ["WORKER_EFFECTS"])

    @asynchronous("alpha")
    @command_handler
    def on_alpha(command: Alpha) -> None:
        effects.record("alpha", command.number)

    @asynchronous("beta")
    @command_handler
    def on_beta(command: Beta) -> None:
        effects.record("beta", command.number)

    @asynchronous("gamma")
    @command_handler
    def on_gamma(command: Gamma) -> None:
        effects.record("gamma", command.number)

    path = os.environ["WORKER_DB"]
    channels = [SqliteChannel(name, path=path, synchronous="NORMAL") for name in CHANNELS]
    return Messaging([on_alpha, on_beta, on_gamma], channels, clock=SystemClock())
