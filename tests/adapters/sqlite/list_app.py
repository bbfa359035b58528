"""An app for test_sqlite_list.py (loaded by ``conveyor list``, not collected by pytest).

One SQLite channel in ``$LIST_DB`` with one handler, on a virtual clock standing at
``$LIST_NOW``, so the ages ``conveyor list`` shows are exact.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

from conveyor import Messaging, VirtualClock, asynchronous, command_handler
from conveyor_sqlite import SqliteChannel


@dataclass(frozen=True)
class Place:
    order: int


def build() -> Messaging:
    @asynchronous("orders")
    @command_handler
    def place(command: Place) -> None: ...

    return Messaging(
        [place],
        [SqliteChannel("orders", path=os.environ["LIST_DB"])],
        clock=VirtualClock(datetime.fromisoformat(os.environ["LIST_NOW"])),
    )
