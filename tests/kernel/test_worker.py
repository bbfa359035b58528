"""``conveyor run`` as a production worker, in real processes: stopping, several consumers.

Signals belong to a process, so each test starts the real command and reads its pipes; a test
never sleeps to wait, it reads until a line appears (with a deadline) or waits for the exit.
"""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

APPS = Path(__file__).parent / "cli_apps"
LINE_TIMEOUT = 20.0  # seconds a process may take to print its next line (a loaded machine)


@contextmanager
def worker(*argv: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "conveyor", *argv],
        cwd=APPS,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def read_until(stream: IO[bytes] | None, text: str, times: int = 1) -> list[str]:
    """Lines from a child's unbuffered pipe until ``text`` was seen ``times``; never hangs."""
    assert stream is not None
    lines: list[str] = []
    while True:
        ready, _, _ = select.select([stream], [], [], LINE_TIMEOUT)
        assert ready, f"no line with {text!r} within {LINE_TIMEOUT}s; so far: {lines}"
        line = stream.readline().decode()
        assert line, f"the process ended before printing {text!r}; it printed: {lines}"
        lines.append(line)
        if "".join(lines).count(text) >= times:
            return lines


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(("--app", "nightly:build", "run", "nightly"), id="schedule"),
        pytest.param(
            ("--app", "nightly:build", "run", "--all", "--concurrency", "4", "--in-memory"),
            id="all",
        ),
        pytest.param(("--app", "nightly:build_async", "run", "nightly"), id="asyncio"),
    ],
)
def test_a_signal_ends_the_wait_for_a_tick_hours_away_and_exits_0_at_once(
    argv: tuple[str, ...], signum: signal.Signals
) -> None:
    with worker(*argv) as process:
        read_until(process.stderr, "SIGTERM or SIGINT stops taking work")
        process.send_signal(signum)
        code = process.wait(timeout=1.0)  # within a second, not at the tick six hours away
        assert process.stdout is not None
        out = process.stdout.read().decode()
    assert code == 0
    assert out.endswith("processed 0 messages (0 handled, 0 retried, 0 failed), stopped: signal\n")


def test_a_second_signal_stops_at_once_and_leaves_the_message_in_flight_to_its_lease() -> None:
    with worker("--app", "nightly:build_with_a_job", "run", "--all") as process:
        read_until(process.stderr, "working on first")
        process.send_signal(signal.SIGTERM)
        read_until(process.stderr, "stopping (signal): taking no more work; 1 in flight")
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=LINE_TIMEOUT)
        assert process.stdout is not None
        out = process.stdout.read().decode()
        assert process.stderr is not None
        err = process.stderr.read().decode()
    assert code == 0
    assert out.endswith("stopped: signal, then a second signal\n")
    assert "finished first" not in err


def test_grace_running_out_stops_the_worker() -> None:
    argv = ("--app", "nightly:build_with_a_job", "run", "jobs", "--grace", "100ms")
    with worker(*argv) as process:
        read_until(process.stderr, "working on first")
        process.send_signal(signal.SIGTERM)
        read_until(process.stderr, "1 in flight to finish within 0:00:00.100000")
        code = process.wait(timeout=LINE_TIMEOUT)
        assert process.stdout is not None
        out = process.stdout.read().decode()
    assert code == 0
    assert out.endswith(
        "processed 0 messages (0 handled, 0 retried, 0 failed), stopped: signal, then grace\n"
    )


def test_several_threads_finish_every_message_in_flight_before_exiting() -> None:
    with worker(
        "--app", "nightly:build_with_a_job", "run", "jobs", "--concurrency", "2"
    ) as process:
        read_until(process.stderr, "working on", times=2)  # both in flight, one per thread
        process.send_signal(signal.SIGTERM)
        read_until(process.stderr, "2 in flight to finish")
        out, err = process.communicate(input=b"go on\ngo on\n", timeout=LINE_TIMEOUT)
    assert process.returncode == 0, err.decode()
    assert out.decode() == (
        "jobs: processed 2 messages (2 handled, 0 retried, 0 failed), stopped: signal\n"
    )


def test_run_names_its_consumers_or_all() -> None:
    with worker("--app", "nightly:build", "run") as process:
        code = process.wait(timeout=LINE_TIMEOUT)
        assert process.stderr is not None
        err = process.stderr.read().decode()
    assert code == 2
    assert "name the consumers to run, or pass --all; consumers: jobs, nightly" in err


def test_run_refuses_an_empty_in_memory_channel_with_the_reason_and_the_fix() -> None:
    with worker("--app", "nightly:build", "run", "--all") as process:
        code = process.wait(timeout=LINE_TIMEOUT)
        assert process.stderr is not None
        err = process.stderr.read().decode()
    assert code == 2
    assert err == (
        "conveyor: error: channel 'jobs' (QueueChannel) is in memory: it lives in this process "
        "only, so no other process can send to it, and it is empty, so this worker would wait "
        "forever. Declare it on a durable transport (for example "
        'SqliteChannel("jobs", path="app.db") from conveyor-sqlite, or a broker\'s channel), or '
        "pass --in-memory if this process's own schedules feed it.\n"
    )


def test_each_consumed_message_is_logged_without_its_payload_as_json_when_asked() -> None:
    argv = ("--app", "nightly:build_with_a_job", "--log-format", "json")
    with worker(*argv, "run", "jobs", "--finish-when-empty") as process:
        out, err = process.communicate(input=b"go on\ngo on\n", timeout=LINE_TIMEOUT)
    assert process.returncode == 0, err.decode()
    entries = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    consumed = [e for e in entries if e["logger"] == "conveyor.activity"]
    assert [(e["level"], e["outcome"], e["channel"], e["delivery"]) for e in consumed] == [
        ("INFO", "handled", "jobs", 1),
        ("INFO", "handled", "jobs", 1),
    ]
    first = consumed[0]
    assert first["message_type"].endswith("Job")
    assert first["endpoint"].endswith("work")
    assert first["duration_ms"] >= 0
    assert first["message"].startswith(f"handled {first['message_type']} [{first['message_id']}]")
    assert "first" not in json.dumps(consumed)  # the payload (Job("first")) is never logged
    assert out.decode().startswith("jobs: processed 2 messages (2 handled")
