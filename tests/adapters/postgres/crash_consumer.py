"""A consumer process for the crash tests (run by test_postgres_crash.py, not collected).

Usage: python crash_consumer.py DSN SCHEMA NAME [STALL_AT STALL_POINT]

It drains the "jobs" channel with a 300 ms lease on the system clock, waiting on LISTEN/NOTIFY
while another consumer holds the last leases. For each message it records, in one transaction on
the application's own connection, that it handled the message and (unless the deduplication
key, read and written in that same transaction through ``PostgresDeduplication(connection=)``,
says it was done already) the effect itself; only then does it ack. It exits when the channel
holds nothing, leased or not.

With STALL_AT=n it stops mid-handler on its n-th message, at STALL_POINT "before-effect" or
"after-effect" (after the transaction committed, before the ack): it prints "MID <message id>"
and blocks reading stdin, waiting to be killed.
"""

from __future__ import annotations

import sys
from datetime import timedelta

import psycopg

from conveyor.core.clock import SystemClock
from conveyor.core.errors import StaleReceipt
from conveyor_postgres import PostgresDeduplication, PostgresTransport

CHANNEL = "jobs"
ENDPOINT = "crash-test.effect"
LEASE = timedelta(milliseconds=300)


def stall(message_id: str) -> None:
    print(f"MID {message_id}", flush=True)
    sys.stdin.read()  # blocks until the test kills us
    raise SystemExit("stdin closed while stalled: the test should have killed this process")


def main(dsn: str, schema: str, name: str, stall_at: int = 0, point: str = "") -> None:
    clock = SystemClock()
    transport = PostgresTransport(dsn, clock=clock, schema=schema)
    app = psycopg.connect(dsn, autocommit=True)
    dedup = PostgresDeduplication(dsn, schema=schema, connection=app)
    handled = 0
    while True:
        found = transport.receive(CHANNEL, lease=LEASE, wait=timedelta(milliseconds=200))
        if not found:
            if transport.pending(CHANNEL) == 0:
                break
            continue
        delivery = found[0]
        handled += 1
        message_id = delivery.message.headers["id"]
        if handled == stall_at and point == "before-effect":
            stall(message_id)
        with app.transaction():
            now = clock.now()
            applied = not dedup.contains(ENDPOINT, message_id, now=now)
            if applied:
                app.execute(f"INSERT INTO {schema}.effects VALUES (%s, %s)", (message_id, name))
                dedup.add(ENDPOINT, message_id, expires_at=now + timedelta(days=1))
            app.execute(
                f"INSERT INTO {schema}.handled (consumer, message_id, delivery_count, applied) "
                f"VALUES (%s, %s, %s, %s)",
                (name, message_id, delivery.delivery_count, applied),
            )
        if handled == stall_at and point == "after-effect":
            stall(message_id)
        try:
            transport.ack(delivery)
        except StaleReceipt:
            print(f"STALE {message_id}", flush=True)  # our lease ran out; the next holder acks
    print(f"DONE {handled}", flush=True)
    transport.close()
    dedup.close()
    app.close()


if __name__ == "__main__":
    dsn_, schema_, consumer = sys.argv[1:4]
    extra = sys.argv[4:]
    main(dsn_, schema_, consumer, int(extra[0]) if extra else 0, extra[1] if extra else "")
