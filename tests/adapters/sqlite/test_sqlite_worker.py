"""A multi-channel worker on SQLite, in a real process: 10,000 messages, 3 channels, 8 threads.

The test fills the channels, runs ``conveyor run alpha beta gamma --concurrency 8
--finish-when-empty`` and waits for its exit; the application's own table must then hold
every message exactly once, and the channels nothing.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from worker_app import Alpha, Beta, Gamma, build, create_effects

HERE = Path(__file__).parent
MESSAGES = 10_000
EXIT_TIMEOUT = 300.0  # seconds: a loaded machine with two cores shared by many processes


def test_eight_threads_on_three_sqlite_channels_handle_10000_messages_once_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database, effects = tmp_path / "queue.db", tmp_path / "effects.db"
    environment = {"WORKER_DB": str(database), "WORKER_EFFECTS": str(effects)}
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    create_effects(str(effects))
    kinds = (Alpha, Beta, Gamma)
    with build(str(effects)) as messaging:
        for number in range(MESSAGES):
            messaging.send(kinds[number % 3](number))
    result = subprocess.run(
        [sys.executable, "-m", "conveyor", "--app", "worker_app:build", "run",
         "alpha", "beta", "gamma", "--concurrency", "8", "--finish-when-empty"],
        cwd=HERE, capture_output=True, text=True, timeout=EXIT_TIMEOUT, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"alpha, beta, gamma: processed {MESSAGES} messages ({MESSAGES} handled, 0 retried, "
        f"0 failed), stopped: empty\n"
    )
    with sqlite3.connect(effects) as connection:
        rows = connection.execute("SELECT channel, number FROM handled").fetchall()
    assert len(rows) == MESSAGES
    assert sorted(number for _, number in rows) == list(range(MESSAGES))
    assert all(channel == ("alpha", "beta", "gamma")[number % 3] for channel, number in rows)
    with build(str(effects)) as messaging:
        for name in ("alpha", "beta", "gamma"):
            inspectable = messaging.runtimes[name].inspectable
            assert inspectable is not None
            assert inspectable.pending(name) == 0
