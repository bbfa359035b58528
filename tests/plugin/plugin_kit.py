"""What the plugin's tests share: a small app for ``pytester`` runs, and readers of pytest output.

The app is written into each ``pytester`` directory as ``app.py``, so the tests there import it
the way a user's tests import their application.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

APP = (Path(__file__).parent / "plugin_app.py").read_text()

HEADER = """
from datetime import timedelta

import pytest

from app import *
from conveyor.testing import where

pytestmark = pytest.mark.conveyor(handlers=HANDLERS, channels=CHANNELS)
"""


def with_app(pytester: pytest.Pytester, tests: str, *, header: bool = True) -> None:
    """Write ``app.py`` and ``test_flow.py`` (the app's imports and marker, then ``tests``)."""
    pytester.makepyfile(app=APP, test_flow=(HEADER if header else "") + tests)


def failure(result: pytest.RunResult, test: str) -> str:
    """The failure text pytest printed for ``test``: its ``E`` lines, or its plain report."""
    lines = result.outlines
    start = next(
        i for i, line in enumerate(lines) if re.fullmatch(rf"_+ {re.escape(test)} _+", line)
    )
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if re.fullmatch(r"(_+ \S+ _+|=+ .* =+)", lines[i])
        ),
        len(lines),
    )
    block = lines[start + 1 : end]
    errors = [line for line in block if line.startswith("E ") or line == "E"]
    if errors:
        return "\n".join(line[8:] if len(line) > 1 else "" for line in errors).rstrip()
    return "\n".join(block).strip()
