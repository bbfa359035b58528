"""A module-level Messaging holding two dead letters, for round trips over several commands.

The channel is in memory, so the letters live as long as this module: the tests call the CLI
in-process, and import this module afresh for each test.
"""

from __future__ import annotations

from shop import with_dead_letters

messaging = with_dead_letters()
