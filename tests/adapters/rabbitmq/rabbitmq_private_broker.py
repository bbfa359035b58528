"""A RabbitMQ broker of one test module's own, which its tests restart (not collected).

The shared broker of ``scripts/test`` serves every other test in parallel, so restarting it
would break them. This one is started by the project's own ``.ci/brokers.sh`` (``start_rabbitmq``)
in a temporary ``BROKERS_DIR`` on free ports, restarted by ``restart_rabbitmq`` (same data
directory: durable queues and persistent messages survive) and stopped by ``stop_all``.
Each call runs the script as a command (``start rabbitmq``, ``restart-rabbitmq``, ``stop``) in a
new ``bash``; the PIDs it records in ``BROKERS_DIR`` tie the calls together.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

__all__ = ["PrivateBroker", "private_broker_or_skip"]

_SCRIPT = Path(__file__).resolve().parents[3] / ".ci" / "brokers.sh"


def private_broker_or_skip() -> PrivateBroker:
    """A new, started private broker; skips (fails under CI=true) where none can run."""
    problem = None
    if not Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists():
        problem = "no rabbitmq-server under /usr/lib/rabbitmq (apt-get install rabbitmq-server)"
    elif os.geteuid() != 0:
        problem = "a private RabbitMQ is started as root, as .ci/brokers.sh does"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the restart tests need a private RabbitMQ under CI=true: {problem}")
        pytest.skip(problem)
    broker = PrivateBroker()
    broker.call("start", "rabbitmq")
    return broker


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateBroker:
    """``start_rabbitmq``, ``restart_rabbitmq`` and ``stop_all`` on private ports."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="cv-rabbit-restart-")
        self.port = _free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self._env = {
            **os.environ,
            "BROKERS_DIR": self.directory,
            "RABBITMQ_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(_free_port()),
            "RABBITMQ_EPMD_PORT": str(_free_port()),
            "RABBITMQ_MANAGEMENT": "0",
            "BROKERS_TIMEOUT": "120",
        }

    def call(self, *command: str) -> None:
        done = subprocess.run(
            ["bash", str(_SCRIPT), *command],
            env=self._env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            called = " ".join(command)
            pytest.fail(f"brokers.sh {called} failed ({done.returncode}):\n{done.stderr[-3000:]}")

    def restart(self) -> None:
        self.call("restart-rabbitmq")

    def remove(self) -> None:
        self.call("stop")
        shutil.rmtree(self.directory, ignore_errors=True)
