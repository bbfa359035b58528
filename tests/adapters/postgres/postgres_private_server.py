"""A PostgreSQL server of one test's own, which the test may stop and start (not collected).

The shared server of ``scripts/test`` serves every other test in parallel, so restarting it
would break them; a private cluster (initdb 0.5 s) restarts without disturbing anyone. Its data
directory survives a stop, so a restart finds every committed message. It runs as the
``postgres`` user through ``setpriv`` (which execs, so the PID held is the postmaster's) and
stops with SIGINT, PostgreSQL's fast shutdown.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest
from postgres_support import Deadline

__all__ = ["PrivateServer", "private_server_or_skip"]


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(found[-1]).parent if found else None


def private_server_or_skip() -> PrivateServer:
    """A new, stopped private server; skips (fails under CI=true) where none can run."""
    problem = None
    binaries = _binaries()
    if binaries is None:
        problem = "no PostgreSQL server binaries under /usr/lib/postgresql"
    elif os.geteuid() != 0 or shutil.which("setpriv") is None:
        problem = "starting a private PostgreSQL needs root and setpriv (to run as postgres)"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the restart tests need a private PostgreSQL under CI=true: {problem}")
        pytest.skip(problem)
    assert binaries is not None
    return PrivateServer(binaries)


class PrivateServer:
    """initdb once, then :meth:`start` and :meth:`stop` as often as the test likes."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.directory = Path(tempfile.mkdtemp(prefix="cv-pg-restart-"))
        self.directory.chmod(0o755)
        shutil.chown(self.directory, "postgres", "postgres")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.process: subprocess.Popen[bytes] | None = None
        self._as_postgres(
            "initdb", "-D", str(self.directory / "data"), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        ).check_returncode()  # fmt: skip

    def _as_postgres(self, program: str, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*self._setpriv(), str(self.binaries / program), *args],
            cwd=self.directory,
            capture_output=True,
            check=False,
        )

    def _setpriv(self) -> list[str]:
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]

    def start(self, deadline: Deadline) -> None:
        self.process = subprocess.Popen(
            [
                *self._setpriv(), str(self.binaries / "postgres"),
                "-D", str(self.directory / "data"), "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1",
                "-c", f"unix_socket_directories={self.directory}",
                "-c", "fsync=off", "-c", "full_page_writes=off",
            ],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        while True:
            try:
                with psycopg.connect(self.dsn, connect_timeout=1):
                    return
            except psycopg.OperationalError:
                if self.process.poll() is not None:
                    pytest.fail(f"the private PostgreSQL exited with {self.process.returncode}")
                deadline.remaining()  # fails the test once the budget is spent
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=0.02)  # a bounded wait on the process, not a sleep

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown; SIGTERM waits for clients
            self.process.wait(timeout=30)
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
