"""``python -m conveyor``: the ``conveyor`` command, for environments without its script."""

from __future__ import annotations

import sys

from conveyor.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
