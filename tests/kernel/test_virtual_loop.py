"""The virtual event loop: asyncio.sleep follows the VirtualClock, never while threads work."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from conveyor import AsyncMessaging, QueueChannel, VirtualClock, asynchronous, command_handler
from conveyor.testing.virtual_loop import virtual_loop

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Throttled:
    name: str


def test_an_hour_of_asyncio_sleep_in_a_handler_takes_no_real_time() -> None:
    clock = VirtualClock(START)
    done: list[datetime] = []

    @asynchronous("work")
    @command_handler
    async def handle(command: Throttled) -> None:
        await asyncio.sleep(3600)  # a rate limit, in virtual time
        done.append(clock.now())

    async def main() -> None:
        async with AsyncMessaging([handle], [QueueChannel("work")], clock=clock) as messaging:
            await messaging.send(Throttled("a"))
            await asyncio.wait_for(messaging.run_until_idle(), timeout=7200)

    with asyncio.Runner(loop_factory=virtual_loop(clock)) as runner:
        runner.run(main())
    assert done == [START + timedelta(hours=1)]


def test_the_clock_stays_put_while_a_thread_works() -> None:
    clock = VirtualClock(START)
    release = threading.Event()

    def blocking() -> datetime:
        release.wait(10)
        return clock.now()

    async def main() -> datetime:
        work = asyncio.ensure_future(asyncio.to_thread(blocking))
        sleeper = asyncio.ensure_future(asyncio.sleep(60))
        await asyncio.sleep(0)
        asyncio.get_running_loop().call_soon(release.set)  # the thread finishes in real time
        seen = await work
        await sleeper  # then the loop jumps for the sleep
        return seen

    with asyncio.Runner(loop_factory=virtual_loop(clock)) as runner:
        seen = runner.run(main())
    assert seen == START  # no jump happened while the thread was in flight
    assert clock.now() == START + timedelta(seconds=60)
