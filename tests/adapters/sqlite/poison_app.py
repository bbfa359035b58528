"""An app on a SQLite file for the ``conveyor run`` test of planted poison rows.

``conveyor --app poison_app:build run orders`` builds it from ``CONVEYOR_TEST_DB``, the file
the test planted rows in; the handled order ids are kept in ``HANDLED``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from conveyor import Messaging, VirtualClock, asynchronous, command_handler
from conveyor.core.ids import SequentialIds
from conveyor_sqlite import SqliteChannel, SqliteDeadLetterStore

HANDLED: list[str] = []


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str


@asynchronous("orders")
@command_handler(endpoint_id="place")
def place(command: PlaceOrder) -> None:
    HANDLED.append(command.order_id)


def build(path: str | None = None) -> Messaging:
    database = path or os.environ["CONVEYOR_TEST_DB"]
    return Messaging(
        handlers=[place],
        channels=[SqliteChannel("orders", path=database)],
        dead_letters=SqliteDeadLetterStore(database),
        clock=VirtualClock(),
        ids=SequentialIds(),
    )
