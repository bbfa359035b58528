"""How much memory the process holds now, for ``run(memory_limit=...)``.

The limit must read the current resident set, not the peak: after one spike the peak never
comes down, so every later ``run()`` would stop at once. Linux gives the current size in
``/proc/self/statm`` (resident pages, times the page size). Elsewhere the standard library has
no current figure, so the peak (``getrusage``'s ``ru_maxrss``: bytes on macOS, KiB on the BSDs)
is read instead: there a limit stops a worker after a spike and keeps stopping its later runs,
which a supervisor restarting the process resolves. Windows has neither, and a limit there
never stops a run (it reads 0).
"""

from __future__ import annotations

import os
import sys

__all__ = ["resident_mib"]

_STATM = "/proc/self/statm"


def resident_mib() -> float:
    """The process's resident memory in MiB: current on Linux, the peak elsewhere."""
    try:
        with open(_STATM, "rb") as statm:
            resident_pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return _peak_mib()
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def _peak_mib() -> float:
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
