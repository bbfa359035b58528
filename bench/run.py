"""Print every benchmark table: ``.venv/bin/python bench/run.py [--quick]``.

Each ``bench/bench_*.py`` module runs in its own interpreter (peers start threads and event
loops, and a million queued messages should not bias the next measurement), in a fixed order,
with ``--quick`` passed on. A module's ratios are always against a baseline measured inside
that same process. The machine facts come first; a summary of the wall time of each module last.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import machine_facts, title

HERE = Path(__file__).resolve().parent

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
    parser.add_argument("only", nargs="*", help="run only modules whose name contains these")
    args = parser.parse_args()

    title(f"Conveyor benchmarks ({'quick' if args.quick else 'full'} run)")
    for fact in machine_facts():
        print(fact)
    sys.stdout.flush()

    spent: list[tuple[str, float, int]] = []
    for path in modules(args.only):
        command = [sys.executable, str(path), *(["--quick"] if args.quick else [])]
        start = time.perf_counter()
        code = subprocess.run(command, cwd=HERE.parent, check=False).returncode
        spent.append((path.stem, time.perf_counter() - start, code))
        sys.stdout.flush()

    title("Wall time per module")
    for name, seconds, code in spent:
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"{name:<20} {seconds:7.1f} s  {status}")
    print(f"{'total':<20} {sum(s for _, s, _ in spent):7.1f} s")
    return 0 if all(code == 0 for _, _, code in spent) else 1


if __name__ == "__main__":
    sys.exit(main())
