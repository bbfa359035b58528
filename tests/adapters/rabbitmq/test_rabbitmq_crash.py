"""Worker processes on one RabbitMQ queue: one SIGKILLed mid-handler loses nothing.

The victim (``rabbitmq_crash_consumer.py``, a ``Messaging`` worker) stops inside its third
handler holding the message unacknowledged; the test kills it with SIGKILL, as the OOM killer
or a power cut would. RabbitMQ sees the connection die and puts the message back; two survivor
workers then drain the queue between them. Every job is handled, the killed one again with a
higher attempt, and none of the two the victim finished is handled twice.

Nothing sleeps: the test reads the children's output and waits on the broker's queue count, all
bounded by one wall-clock budget.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rabbitmq_kit import read_line, ready_count

WORKER = Path(__file__).with_name("rabbitmq_crash_consumer.py")
JOBS = 60
STALL_AT = 3


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_worker_killed_mid_handler_loses_nothing(
    amqp_url: str, queue_names: Callable[[], str]
) -> None:
    deadline = time.monotonic() + 90
    queue = queue_names()
    sender = start(amqp_url, queue, "send", str(JOBS))
    out, err = sender.communicate(timeout=60)
    assert out.strip() == f"SENT {JOBS}", err

    victim = start(amqp_url, queue, str(STALL_AT))
    processes = [victim]
    try:
        lines = [read_line(victim, deadline) for _ in range(STALL_AT)]
        assert lines[-1].startswith("MID "), lines
        finished = [line.split()[1] for line in lines[:-1]]
        killed = lines[-1].split()[1]
        victim.kill()  # SIGKILL mid-handler: no ack, no AMQP close, the socket just dies
        assert victim.wait(timeout=10) == -9

        # RabbitMQ requeues the dead connection's message when it notices the socket closed.
        while ready_count(amqp_url, queue) != JOBS - len(finished):
            if time.monotonic() > deadline:
                pytest.fail(f"RabbitMQ did not requeue job {killed} after the kill")
        survivors = [start(amqp_url, queue) for _ in range(2)]
        processes += survivors
        handled: list[tuple[str, int]] = []
        for survivor in survivors:
            out, err = survivor.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert survivor.returncode == 0, err
            assert out.splitlines()[-1].startswith("DONE "), out
            for line in out.splitlines()[:-1]:
                _, n, attempt = line.split()
                handled.append((n, int(attempt)))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)

    survivors_handled = [n for n, _ in handled]
    assert sorted(survivors_handled + finished, key=int) == [str(n) for n in range(JOBS)]
    assert dict(handled)[killed] >= 2  # redelivered, and counted as a second attempt
    assert ready_count(amqp_url, queue) == 0
