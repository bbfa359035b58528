"""``SqliteChannel``: a durable channel definition on a SQLite file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from conveyor.channels import Channel
from conveyor.clock import Clock
from conveyor.transport import Transport
from conveyor_sqlite.database import Synchronous
from conveyor_sqlite.transport import SqliteTransport

__all__ = ["SqliteChannel"]


@dataclass(frozen=True, kw_only=True)
class SqliteChannel(Channel):
    """A channel whose messages are rows in a SQLite file: they survive a crash or a restart.

    Several channels, the dead-letter store and the deduplication store can share one file, and
    several consumer processes can consume one channel: a received message is leased, and comes
    back if its consumer dies before acknowledging it.

    Attributes:
        path: the database file; created if missing, its directory must exist.
        busy_timeout: how long to wait for another process's write lock before failing.
        synchronous: "FULL" survives power loss; "NORMAL" survives a process crash, faster.
    """

    path: str | os.PathLike[str]
    busy_timeout: timedelta = timedelta(seconds=5)
    synchronous: Synchronous = "FULL"

    def open(self, clock: Clock) -> Transport:
        return SqliteTransport(
            self.path, clock=clock, busy_timeout=self.busy_timeout, synchronous=self.synchronous
        )
