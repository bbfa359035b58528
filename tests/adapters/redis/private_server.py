"""A redis-server of a test's own, for what the shared one must not go through.

Restarts, kills and passwords would disturb every other test on the shared server from
``scripts/test``, so those tests start their own ``redis-server`` (the binary
``.ci/brokers.sh`` installs) on a free loopback port, in a directory of their own, and stop
exactly the process they started. Readiness is polled with PING until a deadline; no sleeps.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

__all__ = ["PrivateRedis", "redis_server_binary"]


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        problem = "redis-server is not installed (.ci/brokers.sh start_redis installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem}; under CI=true that is a failure, not a skip.")
        pytest.skip(problem)
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateRedis:
    """One redis-server process on 127.0.0.1, restartable on the same port and data directory."""

    def __init__(self, directory: Path, *extra: str) -> None:
        self.binary = redis_server_binary()
        self.directory = directory
        self.port = _free_port()
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--dir", str(self.directory),
                "--save", "",
                "--logfile", str(self.directory / "redis.log"),
                "--daemonize", "no",
                *self.extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"redis-server exited at start ({self.process.returncode}):\n{log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    reply = s.recv(64)
                    if reply.startswith((b"+PONG", b"-NOAUTH")):
                        return
                    if reply.startswith(b"-LOADING"):
                        continue
            except OSError:
                pass
            time.sleep(0.01)
        pytest.fail(f"redis-server on port {self.port} was not ready within {timeout} s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the process this object started (SIGKILL: a crash; SIGTERM: a clean stop)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        self.process.wait(timeout=20)

    def restart(self, sig: int = signal.SIGKILL) -> None:
        self.stop(sig)
        self.start()
