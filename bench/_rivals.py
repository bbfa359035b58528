"""Rows of one table measured against a limit and peers: shared by the broker benchmarks.

Each row is a function ``run(url, n) -> seconds``. :func:`measure` runs every row ``repeats``
times, interleaved (so a burst of load from another process hits every row) and keeps the best
time of each; a peer that cannot run here is reported, never fatal. :func:`report` prints the
table with every ratio against the row named "raw" (the limit) and the row named "conveyor",
then whether the targets (at least 0.7x the limit, ahead of each peer) are met; Conveyor's
time against the limit is also a W6 row of ``run.py``'s summary.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from _harness import fmt_int, fmt_ratio, print_table, summarize, title

__all__ = ["Cases", "Runner", "TARGET_VS_RAW", "measure", "report"]

TARGET_VS_RAW = 0.7

Runner = Callable[[str, int], float]
"""``run(url, n) -> seconds``: one row's whole measurement."""

Cases = dict[str, tuple[str, Runner]]
"""Row name -> (label, run). "raw" is the limit, "conveyor" the subject, the others peers."""


def measure(
    cases: Cases,
    url: str,
    n: int,
    repeats: int,
    *,
    before_each: Callable[[], None] = lambda: None,
) -> tuple[dict[str, float], dict[str, str]]:
    """Best seconds per row, and why each row that could not run failed."""
    best: dict[str, float] = {}
    failed: dict[str, str] = {}
    for _ in range(repeats):
        for name, (_, run) in cases.items():  # interleaved, so a burst of load hits every row
            if name in failed:
                continue
            before_each()
            try:
                seconds = run(url, n)
            except Exception as error:  # a peer that cannot run here is reported, not fatal
                failed[name] = f"{type(error).__name__}: {error}"
                continue
            best[name] = min(best.get(name, seconds), seconds)
    return best, failed


def report(
    heading: str,
    cases: Cases,
    best: dict[str, float],
    failed: dict[str, str],
    n: int,
    *,
    peers: tuple[str, ...],
    workload: str,
) -> None:
    """The table, the rows that could not run, and the targets met or missed.

    ``workload`` names the table's row in ``run.py``'s summary ("W6 redis round trip").
    """
    title(heading)
    rows = []
    for name, (label, _) in cases.items():
        if name not in best or "raw" not in best or "conveyor" not in best:
            rows.append([label, "-", "-", "-", "-"])
            continue
        rows.append(
            [
                label,
                fmt_int(n / best[name]),
                f"{best[name] / n * 1e6:.0f}",
                fmt_ratio(best["raw"] / best[name]),
                fmt_ratio(best[name] / best["conveyor"]) if name != "conveyor" else "-",
            ]
        )
    print_table(["", "msgs/s", "us/msg", "throughput / raw", "conveyor is x faster"], rows)
    for name, why in failed.items():
        print(f"({cases[name][0]} could not run here: {why})")
    if "raw" in best and "conveyor" in best:
        # W6 of issue 21: Conveyor's time against the raw client's (at most 1 / 0.7)
        summarize(
            workload,
            best["conveyor"] / best["raw"],
            against=cases["raw"][0],
            target=1 / TARGET_VS_RAW,
        )
        vs_raw = best["raw"] / best["conveyor"]
        print(
            f"target 'at least {TARGET_VS_RAW}x the raw client's throughput': {vs_raw:.2f}x -> "
            f"{'MET' if vs_raw >= TARGET_VS_RAW else 'MISSED'}"
        )
        for peer in peers:
            if peer in best:
                ratio = best[peer] / best["conveyor"]
                print(
                    f"target 'ahead of {peer}': {ratio:.2f}x -> {'MET' if ratio > 1 else 'MISSED'}"
                )
    print()
    sys.stdout.flush()
