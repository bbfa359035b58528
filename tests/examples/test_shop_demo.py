"""The README's first command: the demo shop runs on SQLite and leaves its dead letters behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_demo_prints_a_timeline_and_a_summary_and_the_cli_lists_its_dead_letters(
    tmp_path: Path,
) -> None:
    demo = run([sys.executable, "-m", "examples.shop"], tmp_path)
    assert demo.returncode == 0, demo.stderr
    out = demo.stdout
    assert "Mon 09:00:03  handled      OrderPlaced msg-2 by Mailer.confirm (attempt 3)" in out
    assert "Mon 09:00:03  dead letter  OrderPlaced msg-2 by reserve_stock" in out
    assert "Tue 02:00:00  scheduled    nightly_sales_report" in out
    assert (
        "  orders placed        3 (rows in the orders table; their events left through the outbox)"
        in out
    )
    assert "  dead letters         3 in var/shop.db" in out
    assert "  nightly report       3 orders, 69.49 revenue" in out
    assert (tmp_path / "var" / "shop.db").exists()

    listed = run(
        [
            sys.executable,
            "-m",
            "conveyor",
            "dead-letter",
            "list",
            "--app",
            "examples.shop.app:create_messaging",
        ],
        tmp_path,
    )
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines() if line.startswith("msg-")]
    assert [row.split()[0] for row in rows] == [
        "msg-2@reserve_stock",
        "msg-4@reserve_stock",
        "msg-6@reserve_stock",
    ]


def test_running_the_demo_twice_starts_a_fresh_shop(tmp_path: Path) -> None:
    first = run([sys.executable, "-m", "examples.shop"], tmp_path)
    second = run([sys.executable, "-m", "examples.shop"], tmp_path)
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout
