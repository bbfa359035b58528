"""A consumer process SIGKILLed in the middle of a handler loses nothing on SQS.

Two consumer processes (``sqs_crash_consumer.py``) share one queue on the real server. One is
killed with SIGKILL while it holds a message mid-handler; the survivor receives that message
once its 2 s visibility timeout runs out. Every message is handled, the killed one by the
survivor with SQS's receive count at 2, and the queue ends empty. Waits are on the children's
pipes and exits, bounded by one deadline; nothing sleeps.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from conveyor import SystemClock
from conveyor.transports.seam import WireMessage
from conveyor_sqs import ClientSettings, SqsTransport

CONSUMER = Path(__file__).with_name("sqs_crash_consumer.py")
MESSAGES = 20
BUDGET = 90.0


def _consumer(endpoint: str, prefix: str, name: str, *stall: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CONSUMER), endpoint, prefix, name, *stall],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_consumer_killed_mid_handler_loses_nothing(
    sqs_endpoint: str, settings: ClientSettings, unique: Callable[[str], str]
) -> None:
    deadline = time.monotonic() + BUDGET
    prefix = unique("crash") + "-"
    producer = SqsTransport(clock=SystemClock(), settings=settings, queue_prefix=prefix)
    ids = [f"m-{n:03}" for n in range(MESSAGES)]
    producer.send_batch("jobs", [WireMessage(i.encode(), {"id": i}) for i in ids])
    producer.close()

    victim = _consumer(sqs_endpoint, prefix, "victim", "3")
    survivor = None
    try:
        assert victim.stdout is not None
        handled_by_victim = []
        while (line := victim.stdout.readline().strip()).startswith("HANDLED "):
            handled_by_victim.append(line)
        assert line.startswith("MID "), (line, victim.stderr.read() if victim.stderr else "")
        killed = line.removeprefix("MID ")
        survivor = _consumer(sqs_endpoint, prefix, "survivor")
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

    records = [
        line.split()[1:]
        for line in handled_by_victim + out.splitlines()
        if line.startswith("HANDLED ")
    ]
    assert sorted(message_id for _, message_id, _ in records) == ids  # nothing lost, once each
    assert [(name, count) for name, message_id, count in records if message_id == killed] == [
        ("survivor", "2")
    ]
