"""A module whose own import fails, as when a dependency of the app is not installed."""

from __future__ import annotations

import conveyor_no_such_dependency  # noqa: F401

from conveyor import Messaging

messaging = Messaging()
