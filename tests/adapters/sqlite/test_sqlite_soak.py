"""A bounded SIGKILL soak: 4 consumer processes, 5,000 messages, 50 kills, on one SQLite file.

Consumers (``soak_consumer.py``) run a ``Messaging`` with the application's transaction on the
same file, and deduplication inside that transaction. The test kills a random consumer with
SIGKILL every hundred or so handled messages (wherever it is: mid-handler, mid-commit, mid-ack)
and starts another in its place. Once the channel is empty, every message has its effect (0
lost) and no message has two (0 duplicate effects): an effect and its key commit together, and
a redelivered message whose key committed is acknowledged without running again.

Nothing sleeps: the test waits on the children's stdout pipes with ``select``, bounded by one
wall-clock budget. ``CONVEYOR_SOAK_MESSAGES``, ``CONVEYOR_SOAK_KILLS`` and ``CONVEYOR_SOAK_DEDUP``
(``0`` for the baseline without deduplication, which is expected to show duplicates) scale it.
"""

from __future__ import annotations

import os
import random
import selectors
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from soak_consumer import Job, build, connect

CONSUMER = Path(__file__).with_name("soak_consumer.py")
MESSAGES = int(os.environ.get("CONVEYOR_SOAK_MESSAGES", "5000"))
KILLS = int(os.environ.get("CONVEYOR_SOAK_KILLS", "50"))
DEDUP = os.environ.get("CONVEYOR_SOAK_DEDUP", "1") == "1"
CONSUMERS = 4
BUDGET_SECONDS = float(os.environ.get("CONVEYOR_SOAK_BUDGET", "120"))
SEED = 11


@dataclass
class Consumer:
    process: subprocess.Popen[bytes]
    buffer: bytes = b""
    done: bool = False


@dataclass
class Soak:
    path: Path
    consumers: dict[int, Consumer] = field(default_factory=dict)
    started: int = 0
    lines: int = 0
    kills: int = 0

    def start(self) -> None:
        name = f"c{self.started}"
        self.started += 1
        process = subprocess.Popen(
            [sys.executable, str(CONSUMER), str(self.path), name, "1" if DEDUP else "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert process.stdout is not None
        self.consumers[process.stdout.fileno()] = Consumer(process)


def fill(path: Path) -> None:
    """Every message in one transaction of the application's connection."""
    connection = connect(str(path))
    messaging = build(str(path), "filler", dedup=False, connection=connection)
    connection.execute("BEGIN IMMEDIATE")
    for n in range(MESSAGES):
        messaging.send(Job(n))
    connection.execute("COMMIT")
    messaging.close()
    connection.close()


def test_sigkilled_consumers_lose_nothing_and_apply_each_effect_once(tmp_path: Path) -> None:
    path = tmp_path / "soak.db"
    fill(path)
    soak = Soak(path)
    for _ in range(CONSUMERS):
        soak.start()
    chooser = random.Random(SEED)
    every = max(MESSAGES // (KILLS + 1), 1)
    started = time.monotonic()
    with selectors.DefaultSelector() as selector:
        for fd in soak.consumers:
            selector.register(fd, selectors.EVENT_READ)
        while any(not c.done for c in soak.consumers.values()):
            left = started + BUDGET_SECONDS - time.monotonic()
            if left <= 0:
                pytest.fail(f"the soak did not finish in {BUDGET_SECONDS} s: {soak}")
            for key, _ in selector.select(timeout=left):
                consumer = soak.consumers[key.fd]
                chunk = os.read(key.fd, 65536)
                consumer.buffer += chunk
                *complete, consumer.buffer = consumer.buffer.split(b"\n")
                soak.lines += sum(1 for line in complete if line and line != b"DONE")
                if b"DONE" in complete or not chunk:
                    selector.unregister(key.fd)
                    consumer.process.wait(timeout=max(left, 1))
                    consumer.done = True
            if soak.kills < KILLS and soak.lines >= every * (soak.kills + 1):
                alive = [fd for fd, c in soak.consumers.items() if not c.done]
                if alive:
                    fd = chooser.choice(alive)
                    victim = soak.consumers[fd]
                    victim.process.kill()
                    victim.process.wait(timeout=30)
                    selector.unregister(fd)
                    victim.done = True
                    soak.kills += 1
                    soak.start()
                    newest = list(soak.consumers)[-1]
                    selector.register(newest, selectors.EVENT_READ)
    elapsed = time.monotonic() - started

    with sqlite3.connect(path) as check:
        counts = dict(check.execute("SELECT n, COUNT(*) FROM effects GROUP BY n").fetchall())
    lost = MESSAGES - len(counts)
    duplicates = sum(c - 1 for c in counts.values())
    figures = (
        f"{MESSAGES} messages, {CONSUMERS} consumers, {soak.kills} SIGKILLs, "
        f"deduplication in the transaction: {DEDUP}; lost {lost}, duplicate effects "
        f"{duplicates}, {elapsed:.1f} s"
    )
    print(figures)
    assert soak.kills == KILLS, figures
    assert lost == 0, figures
    if DEDUP:
        assert duplicates == 0, figures
