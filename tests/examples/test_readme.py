"""The README's Python examples run as written, in order, in one namespace (as a reader would).

Blocks that are fragments by design are left out: pytest tests (they need the plugin's
fixtures; ``examples/plugin_shop`` runs the same code) and blocks with ``[...]`` placeholders.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from conveyor import Messaging

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    return [b for b in blocks if "def test_" not in b and "[...]" not in b]


def test_the_readme_examples_run_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks()
    assert len(blocks) >= 4  # quickstart, asynchronous handlers, time, failures
    module = types.ModuleType("readme")  # dataclasses look their module up in sys.modules
    monkeypatch.setitem(sys.modules, "readme", module)
    for block in blocks:
        exec(compile(block, str(README), "exec", dont_inherit=True), module.__dict__)
    assert isinstance(module.__dict__["messaging"], Messaging)
