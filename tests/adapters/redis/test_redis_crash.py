"""A consumer process SIGKILLed in the middle of a handler loses nothing.

Two consumer processes (``redis_crash_consumer.py``) share one channel on the real server. One
is killed with SIGKILL while it holds a lease mid-handler; the survivor receives that message
again once its 300 ms lease runs out. Every message is handled, the killed one with a higher
delivery count, and the channel ends empty. Waits are on the children's pipes and exits,
bounded by one deadline; nothing sleeps.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import redis

from conveyor import SystemClock
from conveyor.transports.seam import WireMessage
from conveyor_redis import RedisTransport

CONSUMER = Path(__file__).with_name("redis_crash_consumer.py")
MESSAGES = 100
BUDGET = 30.0


def _consumer(url: str, prefix: str, name: str, *stall: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CONSUMER), url, prefix, name, *stall],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_consumer_killed_mid_handler_loses_nothing(redis_url: str, prefix: str) -> None:
    deadline = time.monotonic() + BUDGET
    producer = RedisTransport(redis_url, clock=SystemClock(), prefix=prefix)
    ids = [f"m-{n:03}" for n in range(MESSAGES)]
    for message_id in ids:
        producer.send("jobs", WireMessage(message_id.encode(), {"id": message_id}))

    victim = _consumer(redis_url, prefix, "victim", "3")
    survivor = None
    try:
        assert victim.stdout is not None
        mid = victim.stdout.readline().strip()  # the victim prints it once it holds the lease
        assert mid.startswith("MID "), (mid, victim.stderr.read() if victim.stderr else "")
        killed = mid.removeprefix("MID ")
        survivor = _consumer(redis_url, prefix, "survivor")
        victim.kill()  # SIGKILL, mid-handler, holding a lease
        assert victim.wait(timeout=deadline - time.monotonic()) == -9

        out, err = survivor.communicate(timeout=deadline - time.monotonic())
        assert survivor.returncode == 0, err
        assert out.splitlines()[-1].startswith("DONE "), out
    finally:
        for process in (victim, survivor):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)

    client = redis.Redis.from_url(redis_url)
    records = [r.decode().split() for r in client.lrange(f"{prefix}:handled", 0, -1)]
    client.close()
    assert producer.pending("jobs") == 0
    producer.close()
    assert {message_id for _, message_id, _ in records} == set(ids)  # nothing lost
    assert [name for name, message_id, _ in records if message_id == killed] == ["survivor"]
    assert [int(count) for _, message_id, count in records if message_id == killed] == [2]
