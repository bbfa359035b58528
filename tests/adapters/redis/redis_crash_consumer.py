"""A consumer process for the crash test (run by test_redis_crash.py, not collected by pytest).

Usage: python redis_crash_consumer.py URL PREFIX NAME [STALL_AT]

It drains the "jobs" channel with a 300 ms lease on the system clock, recording each handling
(``<name> <message id> <delivery count>``) in the Redis list ``<PREFIX>:handled`` before it
acks. With STALL_AT=n it stops mid-handler on its n-th message: it prints "MID <message id>"
and blocks reading stdin, waiting to be killed. It exits when the channel holds nothing,
leased or not, and prints "DONE <count>".
"""

from __future__ import annotations

import sys
from datetime import timedelta

import redis

from conveyor.core.clock import SystemClock
from conveyor.core.errors import StaleReceipt
from conveyor_redis import RedisTransport

LEASE = timedelta(milliseconds=300)


def main(url: str, prefix: str, name: str, stall_at: int = 0) -> None:
    transport = RedisTransport(url, clock=SystemClock(), prefix=prefix)
    effects = redis.Redis.from_url(url)
    handled = 0
    while True:
        found = transport.receive("jobs", lease=LEASE, wait=timedelta(milliseconds=100))
        if not found:
            if transport.pending("jobs") == 0:
                break
            continue
        [delivery] = found
        handled += 1
        message_id = delivery.message.headers["id"]
        if handled == stall_at:
            print(f"MID {message_id}", flush=True)
            sys.stdin.read()  # blocks until the test kills this process
            raise SystemExit("stdin closed while stalled: the test should have killed us")
        effects.rpush(f"{prefix}:handled", f"{name} {message_id} {delivery.delivery_count}")
        try:
            transport.ack(delivery)
        except StaleReceipt:
            print(f"STALE {message_id}", flush=True)
    print(f"DONE {handled}", flush=True)
    transport.close()


if __name__ == "__main__":
    main(*sys.argv[1:4], *(int(a) for a in sys.argv[4:5]))
