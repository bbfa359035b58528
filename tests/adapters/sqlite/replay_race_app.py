"""A Messaging on a SQLite file, for the processes of the dead-letter replay races."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conveyor import DeadLetterStore, Messaging, VirtualClock, asynchronous, command_handler
from conveyor_sqlite import SqliteChannel, SqliteDeadLetterStore


@dataclass(frozen=True)
class Race:
    order_id: str


@asynchronous("orders")
@command_handler(endpoint_id="place")
def place(command: Race) -> None:
    raise AssertionError("the races only replay; nothing is handled")


def build(path: str, gate: Callable[[DeadLetterStore], DeadLetterStore]) -> Messaging:
    return Messaging(
        handlers=[place],
        channels=[SqliteChannel("orders", path=path)],
        dead_letters=gate(SqliteDeadLetterStore(path)),
        clock=VirtualClock(),
    )
