"""On a real clock, a consumer's slots take the next message themselves: the limits still hold.

``AsyncMessaging.run(channel, concurrency=n)`` on a ``SystemClock`` keeps ``n`` messages in flight
by letting each task that finishes a message take the channel's next one at once (no trip through
the run loop per message). These check that such a run still stops exactly at ``limit``, keeps at
most ``n`` in flight (and does reach ``n``), and leaves the rest on the channel.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from conveyor import AsyncMessaging, QueueChannel, SystemClock, asynchronous, command_handler


@dataclass(frozen=True)
class Job:
    n: int


def test_slots_stop_at_the_limit_with_at_most_concurrency_in_flight() -> None:
    in_flight = 0
    most = 0
    handled: list[int] = []

    @asynchronous("jobs")
    @command_handler
    async def work(job: Job) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        for _ in range(3):  # real awaits, so the other slots run in between
            await asyncio.sleep(0)
        in_flight -= 1
        handled.append(job.n)

    async def main() -> tuple[int, int, int]:
        messaging = AsyncMessaging([work], [QueueChannel("jobs")], clock=SystemClock())
        async with messaging:
            for n in range(40):
                await messaging.send(Job(n))
            first = await messaging.run("jobs", concurrency=4, limit=15)
            rest = await messaging.run("jobs", concurrency=4, finish_when_empty=True)
            left = await messaging.channels["jobs"].transport.pending("jobs")  # type: ignore[attr-defined]
        assert first.stopped_because == "limit"
        return first.processed, rest.processed, left

    first, rest, left = asyncio.run(main())

    assert (first, rest, left) == (15, 25, 0)
    assert most == 4
    assert sorted(handled) == list(range(40))
