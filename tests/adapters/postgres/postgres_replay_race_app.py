"""A Messaging on PostgreSQL, for the processes of the dead-letter replay races.

The argument is ``"<dsn> <schema>"``, so each test keeps to its own tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conveyor import DeadLetterStore, Messaging, asynchronous, command_handler
from conveyor_postgres import PostgresChannel, PostgresDeadLetterStore


@dataclass(frozen=True)
class Race:
    order_id: str


@asynchronous("orders")
@command_handler(endpoint_id="place")
def place(command: Race) -> None:
    raise AssertionError("the races only replay; nothing is handled")


def build(argument: str, gate: Callable[[DeadLetterStore], DeadLetterStore]) -> Messaging:
    dsn, schema = argument.split(" ")
    return Messaging(
        handlers=[place],
        channels=[PostgresChannel("orders", dsn=dsn, schema=schema)],
        dead_letters=gate(PostgresDeadLetterStore(dsn, schema=schema)),
    )
