"""Print every benchmark table: ``.venv/bin/python bench/run.py [--quick] [--check]``.

Each ``bench/bench_*.py`` module runs in its own interpreter (peers start threads and event
loops, and a million queued messages should not bias the next measurement), in a fixed order,
with ``--quick`` passed on. A module's ratios are always against a baseline measured inside
that same process. The machine facts come first; then every module's tables; then one summary
row per workload (W1..W7 and memory), each Conveyor's figure against its peer or limit with the
issue's target; the wall time of each module last.

``--check`` compares the summary with the committed ``bench/baseline.json`` and flags every
workload more than 20% worse than its baseline figure (exit status 1). It is for developers
before closing an issue, not for CI: the figures are ratios measured in one run, but a shared
machine still moves them by 10% or more. ``--write-baseline`` stores this run's figures as the
new baseline. A broker's W6 module runs only when its server is configured (``REDIS_URL``,
``AMQP_URL``, ``DATABASE_URL``, ``SQS_ENDPOINT_URL``); it is listed as skipped otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import RESULTS_ENV, machine_facts, print_table, title

HERE = Path(__file__).resolve().parent
BASELINE = HERE / "baseline.json"
REGRESSION = 1.20  # a figure more than 20% above its baseline is flagged

# A broker module needs its server; without the variable it is skipped, never failed.
NEEDS = {
    "bench_redis": "REDIS_URL",
    "bench_rabbitmq": "AMQP_URL",
    "bench_postgres": "DATABASE_URL",
    "bench_sqs": "SQS_ENDPOINT_URL",
}

ORDER = ["bench_buses", "bench_async", "bench_timers", "bench_test_cost", "bench_sqlite"]


def modules(only: list[str]) -> list[Path]:
    found = {p.stem: p for p in HERE.glob("bench_*.py")}
    ordered = [found.pop(name) for name in ORDER if name in found]
    ordered += [found[name] for name in sorted(found)]
    if only:
        ordered = [p for p in ordered if any(o in p.stem for o in only)]
    return ordered


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller sizes and fewer repeats (about 30 s instead of 5 min)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"flag workloads more than {round((REGRESSION - 1) * 100)}%% worse than "
        "bench/baseline.json",
    )
    parser.add_argument(
        "--write-baseline", action="store_true", help="store this run's summary as the baseline"
    )
    parser.add_argument("only", nargs="*", help="run only modules whose name contains these")
    args = parser.parse_args()

    title(f"Conveyor benchmarks ({'quick' if args.quick else 'full'} run)")
    for fact in machine_facts():
        print(fact)
    sys.stdout.flush()

    spent: list[tuple[str, float, int]] = []
    skipped: list[str] = []
    results = Path(tempfile.mkdtemp(prefix="conveyor-bench-")) / "summary.jsonl"
    environment = {**os.environ, RESULTS_ENV: str(results)}
    for path in modules(args.only):
        needed = NEEDS.get(path.stem)
        if needed is not None and not os.environ.get(needed):
            skipped.append(f"{path.stem}: skipped, {needed} is not set")
            continue
        command = [sys.executable, str(path), *(["--quick"] if args.quick else [])]
        start = time.perf_counter()
        code = subprocess.run(command, cwd=HERE.parent, env=environment, check=False).returncode
        spent.append((path.stem, time.perf_counter() - start, code))
        sys.stdout.flush()

    summary = read_summary(results)
    regressions = print_summary(summary, skipped, check=args.check)
    if args.write_baseline:
        BASELINE.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        print(f"\nbaseline written to {BASELINE.relative_to(HERE.parent)}")

    title("Wall time per module")
    for name, seconds, code in spent:
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"{name:<20} {seconds:7.1f} s  {status}")
    print(f"{'total':<20} {sum(s for _, s, _ in spent):7.1f} s")
    failed = not all(code == 0 for _, _, code in spent)
    return 1 if failed or regressions else 0


Summary = dict[str, dict[str, Any]]


def read_summary(results: Path) -> Summary:
    """The rows the modules appended, by workload (a workload measured twice keeps the last)."""
    if not results.exists():
        return {}
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    return {row.pop("workload"): row for row in rows}


def print_summary(summary: Summary, skipped: list[str], *, check: bool) -> list[str]:
    """The summary table; with ``check``, each figure against the baseline. Returns regressions."""
    title("Summary: Conveyor against its peer or limit, one row per workload (lower is better)")
    baseline: Summary = json.loads(BASELINE.read_text()) if check and BASELINE.exists() else {}
    regressions: list[str] = []
    rows = []
    for workload, row in summary.items():
        value, target, unit = float(row["value"]), float(row["target"]), str(row["unit"])
        cells = [workload, str(row["against"]), _figure(value, unit), _figure(target, unit)]
        cells.append("met" if value <= target else "NOT met")
        if check:
            before = baseline.get(workload)
            if before is None:
                cells.append("no baseline")
            else:
                was = float(before["value"])
                change = value / was if was else float("inf")
                worse = change > REGRESSION
                cells.append(
                    f"{_figure(was, unit)} -> {change:.2f}x{'  REGRESSION' if worse else ''}"
                )
                if worse:
                    regressions.append(workload)
        rows.append(cells)
    headers = ["workload", "against", "Conveyor", "target", "target met"]
    print_table([*headers, *(["vs baseline"] if check else [])], rows, left=2)
    for note in skipped:
        print(f"({note})")
    if check:
        if not baseline:
            print(f"no baseline at {BASELINE}: run with --write-baseline first")
        verdict = ", ".join(regressions) if regressions else "none"
        print(f"regressions past {REGRESSION - 1:.0%} of the baseline: {verdict}")
    return regressions


def _figure(value: float, unit: str) -> str:
    if unit == "B":
        return f"{value:,.0f} B"
    return f"{value:.2f}x" if value >= 0.1 else f"{value:.2g}x"  # 0.0011x: a peer's real waits


if __name__ == "__main__":
    sys.exit(main())
