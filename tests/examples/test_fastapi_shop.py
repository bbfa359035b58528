"""The FastAPI example: ``examples/fastapi_shop``'s tests pass as a user runs them.

They run in a pytest of their own (pytest-asyncio's default strict mode, the plugin from its entry
point), as ``pytest examples/fastapi_shop`` would run them in a user's checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_fastapi_shops_tests_pass_under_pytest() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(ROOT / "examples" / "fastapi_shop"),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
