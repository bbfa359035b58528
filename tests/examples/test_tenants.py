"""The tenants example: per-tenant channels behind one dynamic channel, consumed fairly.

The demo runs as a user runs it (``python -m examples.tenants``), the CLI lists and consumes its
queued reports, and the same wiring over in-memory channels on a virtual clock shows the
fairness exactly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conveyor import Messaging, QueueChannel, RecordKind, SequentialIds, VirtualClock
from examples.tenants.__main__ import queue_reports
from examples.tenants.app import ReportRenderer, report_channels

ROOT = Path(__file__).resolve().parents[2]
APP = "examples.tenants.app:create_messaging"


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "140"}
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_demo_serves_the_quiet_tenant_among_the_first_reports(tmp_path: Path) -> None:
    demo = run([sys.executable, "-m", "examples.tenants"], tmp_path)
    assert demo.returncode == 0, demo.stderr
    lines = demo.stdout.splitlines()
    assert lines[0] == "handled 16 reports, in this order:"
    assert lines[1:8] == [
        "   1  noisy-co     from reports[reports.noisy]",
        "   2  quiet-co     from reports[reports.quiet]",
        "   3  newcomer-co  from reports[reports.shared]",
        "   4  noisy-co     from reports[reports.noisy]",
        "   5  quiet-co     from reports[reports.quiet]",
        "   6  noisy-co     from reports[reports.noisy]",
        "   7  quiet-co     from reports[reports.quiet]",
    ]
    assert all("noisy-co" in line for line in lines[8:])


def test_the_cli_lists_the_dynamic_channel_with_its_targets_and_runs_it(tmp_path: Path) -> None:
    queued = run([sys.executable, "-m", "examples.tenants", "--queue-only"], tmp_path)
    assert queued.returncode == 0, queued.stderr

    listed = run([sys.executable, "-m", "conveyor", "list", "--app", APP], tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[:4] for line in listed.stdout.splitlines()] == [
        ["NAME", "KIND", "PENDING", "IN"],  # IN FLIGHT: none, every target's SQLite says so
        ["reports", "dynamic", "16", "0"],
        ["reports.noisy", "target", "12", "0"],
        ["reports.quiet", "target", "3", "0"],
        ["reports.shared", "target", "1", "0"],
    ]
    assert "send by header 'tenant', receive round robin" in listed.stdout

    ran = run(
        [sys.executable, "-m", "conveyor", "run", "reports", "--limit", "4", "--app", APP],
        tmp_path,
    )
    assert ran.returncode == 0, ran.stderr
    assert (
        ran.stdout
        == "reports: processed 4 messages (4 handled, 0 retried, 0 failed), stopped: limit\n"
    )
    after = run([sys.executable, "-m", "conveyor", "list", "--app", APP], tmp_path)
    # one report from each tenant, and a second from the noisy one
    assert [line.split()[:3] for line in after.stdout.splitlines()[2:]] == [
        ["reports.noisy", "target", "10"],
        ["reports.quiet", "target", "2"],
        ["reports.shared", "target", "0"],
    ]

    internal = run(
        [sys.executable, "-m", "conveyor", "run", "reports.quiet", "--app", APP], tmp_path
    )
    assert internal.returncode == 2
    assert "channel 'reports.quiet' is internal to dynamic channel 'reports'" in internal.stderr


def test_on_memory_the_quiet_tenant_waits_at_most_one_round_of_the_noisy_one() -> None:
    renderer = ReportRenderer([])
    with Messaging(
        [renderer],
        [report_channels(QueueChannel)],
        clock=VirtualClock(),
        ids=SequentialIds(),
    ) as messaging:
        queue_reports(messaging)
        messaging.run_until_idle()

        tenants = [tenant for tenant, _ in renderer.rendered]
        assert tenants[:7] == [
            "noisy-co", "quiet-co", "newcomer-co", "noisy-co", "quiet-co", "noisy-co", "quiet-co",
        ]  # fmt: skip
        assert tenants[7:] == ["noisy-co"] * 9
        handled = messaging.journal.of_kind(RecordKind.HANDLED)
        assert {r.via for r in handled} == {"reports.noisy", "reports.quiet", "reports.shared"}
