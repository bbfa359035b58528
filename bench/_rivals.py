"""Rows of one table measured against a limit and peers: shared by the broker benchmarks.

Each row is a function ``run(url, n) -> seconds``. :func:`measure` runs every row ``repeats``
times, interleaved (so a burst of load from another process hits every row) and keeps the best
time of each; a peer that cannot run here is reported, never fatal. :func:`report` prints the
table with every ratio against the row named "raw" (the limit) and the row named "conveyor",
then whether the targets (at least 0.7x the limit, ahead of each peer) are met; Conveyor's
time against the limit is also a W6 row of ``run.py``'s summary.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Mapping

from _harness import fmt_int, fmt_ratio, print_table, summarize, title

__all__ = ["Cases", "Opened", "Runner", "TARGET_VS_RAW", "measure", "measure_steps", "report"]

TARGET_VS_RAW = 0.7

Runner = Callable[[str, int], float]
"""``run(url, n) -> seconds``: one row's whole measurement."""

Cases = dict[str, tuple[str, Runner]]
"""Row name -> (label, run). "raw" is the limit, "conveyor" the subject, the others peers."""

Opened = tuple[Callable[[int], None], Callable[[], None]]
"""An opened row of a step table: ``step(i)`` (one round trip, for message number i), ``close``."""


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


def measure_steps(
    cases: dict[str, tuple[str, Callable[[str], Opened]]],
    url: str,
    n: int,
    *,
    cpu: dict[str, float] | None = None,
) -> tuple[dict[str, float], dict[str, str]]:
    """Median seconds per step of each row, times ``n``; the rows interleaved step by step.

    On a shared machine a stall of the broker or of this process then hits every row alike,
    where whole runs one after the other would each meet a different burst of load. ``cpu``,
    when given, receives each row's mean CPU seconds per step in this thread: what the client
    library itself costs, which decides the wall time once the machine's cores are contended.
    """
    opened: dict[str, Opened] = {}
    failed: dict[str, str] = {}
    for name, (_, open_case) in cases.items():
        try:
            opened[name] = open_case(url)
            opened[name][0](0)  # warm up: the connection, the queue, the consumer
        except Exception as error:  # a peer that cannot run here is reported, not fatal
            failed[name] = f"{type(error).__name__}: {error}"
            opened.pop(name, None)
    samples: dict[str, list[float]] = {name: [] for name in opened}
    spent = dict.fromkeys(opened, 0.0)
    order = list(opened)
    for i in range(1, n + 1):
        order = order[1:] + order[:1]  # rotate, so no row always follows another
        for name in order:
            started, used = time.perf_counter(), time.thread_time()
            opened[name][0](i)
            spent[name] += time.thread_time() - used
            samples[name].append(time.perf_counter() - started)
    for _, close in opened.values():
        close()
    if cpu is not None:
        cpu.update({name: seconds / n for name, seconds in spent.items()})
    return {name: statistics.median(s) * n for name, s in samples.items()}, failed


def report(
    heading: str,
    cases: Mapping[str, tuple[str, object]],
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
