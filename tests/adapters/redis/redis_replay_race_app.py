"""A Messaging on Redis, for the processes of the dead-letter replay races.

The argument is ``"<url> <prefix>"``, so each test keeps to its own keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conveyor import DeadLetterStore, Messaging, asynchronous, command_handler
from conveyor_redis import RedisChannel, RedisDeadLetterStore


@dataclass(frozen=True)
class Race:
    order_id: str


@asynchronous("orders")
@command_handler(endpoint_id="place")
def place(command: Race) -> None:
    raise AssertionError("the races only replay; nothing is handled")


def build(argument: str, gate: Callable[[DeadLetterStore], DeadLetterStore]) -> Messaging:
    url, prefix = argument.split(" ")
    return Messaging(
        handlers=[place],
        channels=[RedisChannel("orders", url=url, prefix=prefix)],
        dead_letters=gate(RedisDeadLetterStore(url, prefix=prefix)),
    )
