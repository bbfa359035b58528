"""A consumer process for the crash test (run by test_rabbitmq_crash.py, not collected).

Usage: python rabbitmq_crash_consumer.py AMQP_URL QUEUE [STALL_AT]
       python rabbitmq_crash_consumer.py AMQP_URL QUEUE send N

A worker as a user writes one: a ``Messaging`` with a ``RabbitMQChannel`` and an asynchronous
command handler, driven by ``run(QUEUE, finish_when_empty=True)``. The handler prints
"HANDLED <n> <attempt>" for each job. With STALL_AT=k it stops inside its k-th handler, prints
"MID <n>" and blocks reading stdin, waiting to be SIGKILLed while RabbitMQ holds the message
for its connection. With "send N" it sends jobs 0 to N-1 (the same ``Job`` type the consumers
decode) and prints "SENT N".
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from conveyor import Context, Messaging, SystemClock, asynchronous, command_handler
from conveyor_rabbitmq import RabbitMQChannel


@dataclass(frozen=True)
class Job:
    n: int


def main(url: str, queue: str, stall_at: int = 0, send: int = 0) -> None:
    handled = 0

    @asynchronous(queue)
    @command_handler
    def work(job: Job, ctx: Context) -> None:
        nonlocal handled
        handled += 1
        if handled == stall_at:
            print(f"MID {job.n}", flush=True)
            sys.stdin.read()  # blocks until the test kills this process
            raise SystemExit("stdin closed while stalled: the test should have killed us")
        print(f"HANDLED {job.n} {ctx.headers.attempt}", flush=True)

    channel = RabbitMQChannel(queue, url=url)
    with Messaging(handlers=[work], channels=[channel], clock=SystemClock()) as messaging:
        if send:
            for n in range(send):
                messaging.send(Job(n))  # returns once RabbitMQ confirmed it
            print(f"SENT {send}", flush=True)
            return
        result = messaging.run(queue, finish_when_empty=True)
    print(f"DONE {result.processed}", flush=True)


if __name__ == "__main__":
    arguments = sys.argv[3:]
    if arguments[:1] == ["send"]:
        main(sys.argv[1], sys.argv[2], send=int(arguments[1]))
    else:
        main(sys.argv[1], sys.argv[2], stall_at=int(arguments[0]) if arguments else 0)
