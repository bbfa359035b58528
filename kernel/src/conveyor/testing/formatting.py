"""How testing output writes time and counts: durations, virtual instants, due times, plurals.

Failure output, strict teardown and transcripts all speak in virtual time since the test began
(``+1.5s``) and count things the same way (``2 attempts``). Writing each of those in one place
keeps the three readings alike, and keeps a flow's text the same from run to run.
"""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta

__all__ = ["format_duration", "format_offset", "format_due", "plural", "fit", "cut", "wrap"]


def format_duration(duration: timedelta | None) -> str:
    """``1s``, ``1.5s``, ``250ms``, ``2m 5s``, ``24h``, ``1d 2h``: short and exact."""
    if duration is None:
        return "-"
    total_ms = round(duration.total_seconds() * 1000)
    sign, total_ms = ("-", -total_ms) if total_ms < 0 else ("", total_ms)
    if total_ms < 1000:
        return f"{sign}{total_ms}ms" if total_ms else "0s"
    seconds, ms = divmod(total_ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [
        f"{value}{unit}" for value, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if value
    ]
    if seconds or ms:
        parts.append(f"{seconds}.{ms:03d}".rstrip("0").rstrip(".") + "s" if ms else f"{seconds}s")
    return sign + " ".join(parts)


def format_offset(at: datetime, origin: datetime) -> str:
    """An instant as virtual time since the test began: ``+0s``, ``+1.5s``, ``+24h``."""
    text = format_duration(at - origin)
    return text if text.startswith("-") else f"+{text}"


def format_due(due: datetime, now: datetime, origin: datetime) -> str:
    """When a pending message runs: ``runnable now``, or ``due at +1s`` in virtual time."""
    return "runnable now" if due <= now else f"due at {format_offset(due, origin)}"


def plural(count: int, noun: str) -> str:
    """``1 attempt``, ``2 attempts``: a count and its noun, with an ``s`` unless it is one."""
    return f"{count} {noun}{'s' if count != 1 else ''}"


def cut(text: str, limit: int) -> str:
    """``text`` on one line, cut with ``…`` past ``limit`` characters (values, not commands)."""
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fit(line: str, width: int) -> str:
    """A line of a listing, cut with ``…`` at ``width`` so that columns stay aligned."""
    return line if len(line) <= width else line[: width - 1] + "…"


def wrap(text: str, width: int, indent: str = "  ") -> list[str]:
    """Prose (a headline, a hint) wrapped at ``width``, never cut: every word is kept whole."""
    return textwrap.wrap(
        text, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
    ) or [""]
