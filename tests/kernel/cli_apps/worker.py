"""A production-like app for the signal test: a SystemClock, no limits, one job waiting.

The handler says it started on stderr, then waits for a line on stdin, so the test can send a
signal while a message is being handled and then let the handler finish.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from conveyor import Messaging, QueueChannel, asynchronous, command_handler


@dataclass(frozen=True)
class Job:
    name: str


@asynchronous("jobs")
@command_handler
def work(job: Job) -> None:
    print(f"working on {job.name}", file=sys.stderr, flush=True)
    sys.stdin.readline()
    print(f"finished {job.name}", file=sys.stderr, flush=True)


def build() -> Messaging:
    messaging = Messaging([work], [QueueChannel("jobs")])
    messaging.send(Job("first"))
    messaging.send(Job("second"))
    return messaging
