"""``--log-format json``: one JSON object per log line, for log shippers.

Loki, Elasticsearch and CloudWatch read fields from JSON lines without a parsing rule. Each line
has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``; fields a record carries in
``extra`` (a consumed message's type, id, channel, endpoint, outcome and duration) become
fields of their own, and a traceback becomes ``exception``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

__all__ = ["JsonFormatter"]

_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update((k, v) for k, v in vars(record).items() if k not in _STANDARD)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
