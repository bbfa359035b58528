"""A dynamic channel over Redis channels: per-tenant streams, fair consumption, retry to the tenant.

The same strategies as on the in-memory and SQLite transports (``tests/kernel``), on a real
server and the system clock: the consumer runs until a deadline, nothing sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from conveyor import (
    Backoff,
    Context,
    DynamicChannel,
    Messaging,
    RecordKind,
    RetryPolicy,
    SystemClock,
    asynchronous,
    by_header,
    command_handler,
)
from conveyor_redis import RedisChannel


@dataclass(frozen=True)
class Render:
    n: int


class Renderer:
    def __init__(self) -> None:
        self.rendered: list[tuple[str, int]] = []
        self.fail_once = {99}

    @asynchronous("reports")
    @command_handler
    def render(self, command: Render, context: Context) -> None:
        if command.n in self.fail_once:
            self.fail_once.discard(command.n)
            raise TimeoutError("renderer busy")
        self.rendered.append((str(context.headers.get("tenant")), command.n))


@pytest.fixture
def tenants(redis_url: str, prefix: str) -> Iterator[tuple[Renderer, Messaging]]:
    renderer = Renderer()
    names = {"noisy": "reports.noisy", "quiet": "reports.quiet"}
    messaging = Messaging(
        [renderer],
        [
            DynamicChannel(
                "reports",
                channels=[RedisChannel(n, url=redis_url, prefix=prefix) for n in names.values()],
                sending=by_header("tenant", names),
                retry=RetryPolicy(delays=Backoff.fixed(timedelta(milliseconds=50)), attempts=2),
            )
        ],
        clock=SystemClock(),
        log_failures=False,
    )
    yield renderer, messaging
    messaging.close()


def test_tenants_on_redis_are_served_in_turn_and_a_retry_returns_to_its_stream(
    tenants: tuple[Renderer, Messaging],
) -> None:
    renderer, messaging = tenants
    for n in range(4):
        messaging.send(Render(n), headers={"tenant": "noisy"})
    messaging.send(Render(99), headers={"tenant": "quiet"})
    messaging.send(Render(100), headers={"tenant": "quiet"})

    deadline = time.monotonic() + 10
    while len(renderer.rendered) < 6:
        if time.monotonic() > deadline:
            pytest.fail(f"only {renderer.rendered} were rendered within 10 s")
        messaging.run("reports", finish_when_empty=True, limit=10)

    # noisy 0, quiet 99 (fails; retried on reports.quiet in 50 ms), noisy 1, quiet 100, ...:
    # the quiet tenant's second report does not wait for all of the noisy tenant's.
    assert ("quiet", 100) in renderer.rendered[:3]
    assert sorted(n for _, n in renderer.rendered) == [0, 1, 2, 3, 99, 100]
    (retried,) = messaging.journal.of_kind(RecordKind.RETRIED)
    assert (retried.channel, retried.via) == ("reports", "reports.quiet")
    handled = messaging.journal.of_kind(RecordKind.HANDLED)  # no payloads on a SystemClock
    handled_99 = [r for r in handled if r.message_id == retried.message_id]
    assert [r.via for r in handled_99] == ["reports.quiet"]
    assert messaging.runtimes["reports"].inspectable is not None
    assert messaging.runtimes["reports"].inspectable.pending("reports") == 0
