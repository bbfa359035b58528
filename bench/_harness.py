"""Shared measuring and printing for the benchmarks: timing loops, machine facts, tables.

Benchmarks are measurements, not tests. Every ratio is taken against a baseline measured in the
same process, interleaved with the subject (round-robin over repeats), and every figure is the
best of several repeats: on a shared machine noise only ever adds time, so the minimum is the
estimate least disturbed by other processes. The median is printed next to it so a noisy run is
visible.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Sample",
    "TailMemory",
    "best_of",
    "fmt_bytes",
    "fmt_int",
    "fmt_ns",
    "fmt_ratio",
    "interleaved",
    "machine_facts",
    "print_table",
    "summarize",
    "rss_bytes",
    "title",
    "traced",
    "traced_tail",
]

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Sample:
    """Repeated measurements of one case, in seconds per operation (or per whole run)."""

    values: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)


def interleaved(
    cases: dict[str, tuple[Callable[[object], object], object]], *, number: int, repeats: int
) -> dict[str, Sample]:
    """Time ``op(arg)`` ``number`` times per case, repeats interleaved case by case.

    Every case pays the same loop and call overhead (one local call per iteration), so the
    difference between two cases is the difference between their operations.
    """
    results: dict[str, list[float]] = {name: [] for name in cases}
    for op, arg in cases.values():  # warm up: caches, plans, first-call costs
        for _ in range(min(number, 200)):
            op(arg)
    for _ in range(repeats):
        for name, (op, arg) in cases.items():
            rng = range(number)
            start = time.perf_counter()
            for _ in rng:
                op(arg)
            results[name].append((time.perf_counter() - start) / number)
    return {name: Sample(tuple(values)) for name, values in results.items()}


def best_of(run: Callable[[], float], repeats: int) -> Sample:
    """Call ``run`` (which returns the seconds it measured) ``repeats`` times."""
    return Sample(tuple(run() for _ in range(repeats)))


def traced(work: Callable[[], object]) -> tuple[int, int, object]:
    """Run ``work`` under tracemalloc; return (current, peak) bytes it added, and its result.

    A full garbage collection runs first, so the baseline is clean, and again before reading
    ``current``, so only what ``work`` keeps alive is counted.
    """
    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        result = work()
        _, peak = tracemalloc.get_traced_memory()
        gc.collect()
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return current - base, peak - base, result


@dataclass(frozen=True)
class TailMemory:
    """Bytes per message with ``total`` held, measured by tracing the last ``traced`` of them.

    Attributes:
        per_message: bytes held per message, fixed-size structures spread over ``total``.
        peak_per_message: the same at the peak (transient allocations spread over ``total``).
        large_blocks: bytes in blocks of ``large`` bytes or more (container arrays).
        bounded: bytes held by the bounded structures (a bounded journal's records).
        prefill_seconds: how long the untraced part took (a send rate, free of tracing).
    """

    per_message: float
    peak_per_message: float
    large_blocks: int
    bounded: int
    prefill_seconds: float


def traced_tail(
    prefill: Callable[[], object],
    tail: Callable[[], object],
    *,
    total: int,
    traced: int,
    reset_bounded: Callable[[], object] | None = None,
    large: int = 64 << 10,
) -> TailMemory:
    """Run ``prefill`` untraced, then ``tail`` under tracemalloc; bytes per message at ``total``.

    tracemalloc makes a send about six times slower, so only the last ``traced`` messages are
    traced; what they add, divided by their number, is the cost of one more message with
    ``total`` held. Two corrections keep it exact:

    * a container's array (a heap's list) that grows during the traced part is reallocated, and
      tracemalloc then counts the whole new array, not its growth. Such arrays are the only
      blocks of ``large`` bytes or more; they are taken out of the traced part and charged to all
      ``total`` messages. With ``traced >= total / 8`` a growing list is reallocated at least once
      while traced (it over-allocates by 1/8), so its array is always seen;
    * a bounded structure (a journal with ``max_records``) evicts entries made before tracing,
      whose memory tracemalloc never saw, so it would be counted twice. ``reset_bounded`` empties
      it before the traced part (it refills while traced) and again at the end: the difference is
      its full size, charged to all ``total`` messages.
    """
    gc.collect()
    start = time.perf_counter()
    prefill()
    prefill_seconds = time.perf_counter() - start
    if reset_bounded is not None:
        reset_bounded()
    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        tail()
        _, peak = tracemalloc.get_traced_memory()
        gc.collect()
        with_bounded, _ = tracemalloc.get_traced_memory()
        current = with_bounded
        if reset_bounded is not None:
            reset_bounded()
            gc.collect()
            current, _ = tracemalloc.get_traced_memory()
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    raw = getattr(snapshot, "_traces", None)  # (domain, size, frames, nframe) tuples: fast
    sizes = (t[1] for t in raw) if raw is not None else (t.size for t in snapshot.traces)
    big = sum(size for size in sizes if size >= large)
    del snapshot, raw
    bounded = with_bounded - current
    per_message = (current - base - big) / traced + (big + bounded) / total
    return TailMemory(
        per_message=per_message,
        peak_per_message=per_message + max(peak - with_bounded, 0) / total,
        large_blocks=big,
        bounded=bounded,
        prefill_seconds=prefill_seconds,
    )


RESULTS_ENV = "CONVEYOR_BENCH_RESULTS"
"""Where ``run.py`` asks each module (run in its own interpreter) to append its summary rows."""


def summarize(workload: str, value: float, *, against: str, target: float, unit: str = "x") -> None:
    """One row of ``run.py``'s summary table: a workload's headline figure, lower is better.

    Args:
        workload: the row's name, stable across runs (``--check`` matches the baseline by it).
        value: Conveyor's time divided by ``against``'s, measured in this process (unit "x"),
            or bytes (unit "B").
        against: what the ratio is taken against (a peer, or the raw client: the limit).
        target: the value the issue asks for at most.
        unit: "x" for a ratio, "B" for bytes.

    Does nothing unless ``run.py`` set ``CONVEYOR_BENCH_RESULTS``, so a module run alone only
    prints its tables.
    """
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    row = {"workload": workload, "value": value, "against": against, "target": target}
    with open(path, "a") as out:
        out.write(json.dumps({**row, "unit": unit}) + "\n")


def rss_bytes() -> int:
    """The process's resident set size now (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def machine_facts() -> list[str]:
    """What a reader needs to compare this run with another one."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return [
        f"python   {platform.python_implementation()} {sys.version.split()[0]} "
        f"({platform.platform()})",
        f"cpu      {os.cpu_count()} logical CPUs ({usable} usable), {cpu or 'unknown model'}",
        f"load     {load} (1/5/15 min load average at start; other work inflates timings)",
        f"commit   {_git_revision()}",
        f"gc       {'enabled' if gc.isenabled() else 'DISABLED'}, thresholds {gc.get_threshold()}",
    ]


def _git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "kernel"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted kernel changes' if dirty else ''}"


def title(text: str) -> None:
    print()
    print(text)
    print("=" * len(text))


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 1, note: str = ""
) -> None:
    """Columns aligned; the first ``left`` columns left-aligned (labels), the others right."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(c).ljust(w) if i < left else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
    if note:
        print(note)


def fmt_ns(seconds: float) -> str:
    ns = seconds * 1e9
    return f"{ns:,.0f}" if ns >= 100 else f"{ns:.1f}"


def fmt_ratio(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}x"
    return f"{value:.1f}x" if value >= 10 else f"{value:.2f}x"


def fmt_int(value: float) -> str:
    return f"{value:,.0f}"


def fmt_bytes(value: float) -> str:
    return f"{value:,.0f}"
