"""The ``conveyor`` command line: run consumers, list them, act on dead letters."""

from __future__ import annotations

from conveyor.cli.main import main

__all__ = ["main"]
