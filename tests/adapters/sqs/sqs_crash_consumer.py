"""A consumer process for the crash test (run by test_sqs_crash.py, not collected by pytest).

Usage: python sqs_crash_consumer.py ENDPOINT QUEUE_PREFIX NAME [STALL_AT]

It drains the "jobs" channel with a 2 s lease (visibility timeout), printing each handling as
``HANDLED <name> <message id> <delivery count>`` before it acks. With STALL_AT=n it stops
mid-handler on its n-th message: it prints "MID <message id>" and blocks reading stdin, waiting
to be killed. It exits when the queue holds nothing, visible or in flight, and prints
"DONE <count>". Credentials and region come from the environment, as in any boto3 program.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

from conveyor.core.clock import SystemClock
from conveyor_sqs import ClientSettings, SqsTransport

LEASE = timedelta(seconds=2)


def main(endpoint: str, prefix: str, name: str, stall_at: int = 0) -> None:
    import boto3

    transport = SqsTransport(
        clock=SystemClock(), settings=ClientSettings(endpoint_url=endpoint), queue_prefix=prefix
    )
    observer = boto3.client("sqs", endpoint_url=endpoint)
    url = observer.get_queue_url(QueueName=transport.queue_name("jobs"))["QueueUrl"]
    handled = 0
    while True:
        found = transport.receive("jobs", lease=LEASE, wait=timedelta(seconds=1))
        if not found:
            if left(observer, url) == 0:
                break
            continue
        [delivery] = found
        handled += 1
        message_id = delivery.message.headers["id"]
        if handled == stall_at:
            print(f"MID {message_id}", flush=True)
            sys.stdin.read()  # blocks until the test kills this process
            raise SystemExit("stdin closed while stalled: the test should have killed us")
        print(f"HANDLED {name} {message_id} {delivery.delivery_count}", flush=True)
        transport.ack(delivery)
    print(f"DONE {handled}", flush=True)
    transport.close()


def left(client: Any, url: str) -> int:
    """Messages on the queue, visible or in flight (exact on the emulator)."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    found = client.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(found[n]) for n in names)


if __name__ == "__main__":
    main(*sys.argv[1:4], *(int(a) for a in sys.argv[4:5]))
