"""Text in and out of the ``conveyor`` command: durations and counts it reads, what it prints.

People read tables at a glance; machines read ``--json``. Kept apart from ``conveyor.cli.main`` so
that module stays about loading the app, commands and exit codes. Everything
shown here may come from a message that failed (a body, a header, an exception message), so
text is made printable first: control characters are escaped, never sent to the terminal where
they could rewrite the screen.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import unicodedata
from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from conveyor.core.journal import Record, RecordKind
from conveyor.core.wire import H
from conveyor.stores.dead_letters import DeadLetter

__all__ = [
    "parse_duration",
    "positive_int",
    "non_negative_int",
    "letter_table",
    "letter_to_json",
    "describe_letter",
    "printable",
    "terminal_width",
    "when",
    "table",
]

_ELLIPSIS = "..."
_DURATION_PART = r"(\d+(?:\.\d+)?)(ms|s|m|h|d)"
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``45s``, ``30m``, ``1h30m``, ``500ms``, ``1.5h``, ``1d``: units ms, s, m, h, d.

    Units are required: a bare ``30`` could mean seconds or minutes, and a consumer that runs
    sixty times longer than meant is the kind of mistake that shows only in production.
    """
    cleaned = text.strip().lower()
    if re.fullmatch(f"(?:{_DURATION_PART})+", cleaned) is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration; use numbers with units ms, s, m, h or d, for example "
            f"45s, 30m, 1h30m or 500ms"
        )
    seconds = sum(float(n) * _UNITS[unit] for n, unit in re.findall(_DURATION_PART, cleaned))
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be longer than zero")
    return timedelta(seconds=seconds)


def positive_int(text: str) -> int:
    """A count such as ``--limit``: zero would stop before doing anything, so it is refused."""
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} cannot be negative")
    return value


def terminal_width() -> int:
    """Columns of the terminal; 100 when output goes to a pipe or file (``COLUMNS`` wins)."""
    return shutil.get_terminal_size(fallback=(100, 24)).columns


def printable(text: str) -> str:
    """``text`` with control and format characters escaped (newlines and tabs kept)."""
    if text.isprintable():
        return text
    return "".join(
        c if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cf") else _escape(c)
        for c in text
    )


def when(instant: datetime | None) -> str:
    """A UTC instant to the second, the precision a person scans a list for."""
    if instant is None:
        return "-"
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], width: int) -> list[str]:
    """Aligned columns, one line per row, each cut to ``width`` so nothing wraps."""
    cells = [list(headers), *([_cell(value) for value in row] for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
    lines = []
    for line in cells:
        text = "  ".join(value.ljust(w) for value, w in zip(line, widths, strict=True)).rstrip()
        if len(text) > width:
            text = text[: max(width - len(_ELLIPSIS), 0)] + _ELLIPSIS
        lines.append(text)
    return lines


# ---------------------------------------------------------------------- run outcomes


class OutcomeCounts:
    """What one consumer run did with its messages: handled, retried, failed for good.

    ``processed`` counts deliveries; a person reading a worker's last line wants to know how
    many of them went well. It listens to the journal, counting records of the run's consumer.
    """

    KINDS = frozenset(
        {
            RecordKind.HANDLED,
            RecordKind.RETRIED,
            RecordKind.DEAD_LETTERED,
            RecordKind.ERROR_HANDLED,
            RecordKind.DISCARDED,  # a rejected message is dead-lettered too: counted once
        }
    )

    def __init__(self, *consumers: str) -> None:
        self.consumers = frozenset(consumers)
        self.handled = self.retried = self.failed = 0

    def add(self, record: Record) -> None:
        if record.channel not in self.consumers and record.endpoint_id not in self.consumers:
            return
        if record.kind is RecordKind.HANDLED:
            self.handled += 1
        elif record.kind is RecordKind.RETRIED:
            self.retried += 1
        else:
            self.failed += 1

    def __str__(self) -> str:
        return f"{self.handled} handled, {self.retried} retried, {self.failed} failed"


# ---------------------------------------------------------------------- dead letters


def short_id(letter_id: str) -> str:
    """``…9f3c2a1b@charge``: the end of the message id, then the endpoint.

    A dead letter's id is ``message id@endpoint``; uuid v7 message ids made close together
    share their start, so the end is what tells them apart.
    """
    message, at, endpoint = letter_id.partition("@")
    if len(message) > 12:
        message = "…" + message[-8:]
    return f"{message}{at}{endpoint}"


def id_matches(letter_id: str, given: str) -> bool:
    """Whether ``given`` (a short id, or part of one from either end) names ``letter_id``."""
    given = given.lstrip("…")
    message, _, endpoint = letter_id.partition("@")
    part, at, wanted = given.partition("@")
    if at and wanted != endpoint:
        return False
    return bool(part) and (message.endswith(part) or message.startswith(part))


def letter_table(
    letters: Sequence[DeadLetter], width: int, *, short_ids: bool = False
) -> list[str]:
    """``conveyor dead-letter list``: the reason last, since it is the column cut first."""
    rows = [
        (
            short_id(letter.id) if short_ids else letter.id,
            when(letter.last_failed_at),
            letter.channel,
            letter.endpoint_id or "-",
            letter.message_type,
            letter.attempts,
            _reason(letter),
        )
        for letter in letters
    ]
    headers = ("ID", "FAILED AT (UTC)", "CHANNEL", "ENDPOINT", "TYPE", "ATTEMPTS", "REASON")
    return table(headers, rows, width)


def describe_letter(letter: DeadLetter) -> str:
    """``conveyor dead-letter show``: every field, the headers, the body and the traceback."""
    fields = [
        ("message id", letter.message_id),
        ("channel", letter.channel),
        ("endpoint", letter.endpoint_id or "- (no endpoint)"),
        ("type", letter.message_type),
        ("reason", letter.reason),
        ("attempts", str(letter.attempts)),
        ("first failed", _iso(letter.first_failed_at)),
        ("last failed", _iso(letter.last_failed_at)),
        ("replayed", str(letter.replayed)),
        ("exception", _exception(letter) or "-"),
    ]
    label = max(len(name) for name, _ in fields) + 1
    lines = [f"Dead letter {printable(letter.id)}", ""]
    continued = "\n" + " " * (label + 3)  # a multi-line exception message stays in its column
    for name, value in fields:
        text = printable(value).replace("\n", continued)
        lines.append(f"  {(name + ':').ljust(label)} {text}")
    yours = user_frames(letter.traceback or "")
    if yours:
        lines += ["", "Raised in your code (innermost first)", *yours]
    lines += ["", f"Headers ({len(letter.headers)})"]
    lines += [f"  {_cell(k)}: {_cell(v)}" for k, v in sorted(letter.headers.items())]
    title, body = _body_for_people(letter)
    lines += ["", title, *_indent(body)]
    if letter.traceback:
        lines += ["", "Traceback", *_indent(printable(letter.traceback.rstrip()))]
    return "\n".join(lines)


_FRAME = re.compile(r'^  File "([^"]+)", line (\d+), in (.+)\n(?:    (.+)\n)?', re.MULTILINE)
_LIBRARY = (os.sep + "site-packages" + os.sep, os.sep + "conveyor" + os.sep, "<frozen ")


def user_frames(traceback_text: str) -> list[str]:
    """The frames of a traceback that are the application's, innermost first, one line each.

    A dead letter's traceback starts in the kernel's consumer loop; the user's handler is at
    the bottom. ``dead-letter show`` lists these first, so the line to fix is the first read.
    """
    found = []
    for match in _FRAME.finditer(traceback_text + "\n"):
        file, line, name, code = match.groups()
        if any(part in file for part in _LIBRARY):
            continue
        found.append(f"  {file}:{line} in {name}" + (f": {code.strip()}" if code else ""))
    return [printable(line) for line in reversed(found)]


def letter_to_json(letter: DeadLetter) -> dict[str, Any]:
    """Every field; the body as UTF-8 text when it is text, else base64 (``body_encoding``)."""
    try:
        body, encoding = letter.body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        body, encoding = base64.b64encode(letter.body).decode("ascii"), "base64"
    return {
        "id": letter.id,
        "message_id": letter.message_id,
        "channel": letter.channel,
        "endpoint_id": letter.endpoint_id,
        "message_type": letter.message_type,
        "reason": letter.reason,
        "attempts": letter.attempts,
        "first_failed_at": letter.first_failed_at.isoformat() if letter.first_failed_at else None,
        "last_failed_at": letter.last_failed_at.isoformat() if letter.last_failed_at else None,
        "replayed": letter.replayed,
        "exception_type": letter.exception_type,
        "exception_message": letter.exception_message,
        "traceback": letter.traceback,
        "headers": dict(letter.headers),
        "body": body,
        "body_encoding": encoding,
    }


def _body_for_people(letter: DeadLetter) -> tuple[str, str]:
    size = len(letter.body)
    content_type = letter.headers.get(H.CONTENT_TYPE, "")
    if not letter.body:
        return "Body (0 bytes)", "(empty)"
    try:
        text = letter.body.decode("utf-8")
    except UnicodeDecodeError:
        rows = [letter.body[i : i + 16].hex(" ") for i in range(0, size, 16)]
        return f"Body ({size} bytes, not UTF-8; shown as hex)", "\n".join(rows)
    if "json" in content_type:
        with suppress(ValueError):  # not valid JSON after all: show it as it is
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    kind = f", {printable(content_type)}" if content_type else ""
    return f"Body ({size} bytes{kind})", printable(text)


def _reason(letter: DeadLetter) -> str:
    # "failed" is the common reason and the exception says more: show the exception alone.
    exception = _exception(letter, short=True)
    if not exception:
        return letter.reason
    return exception if letter.reason == "failed" else f"{letter.reason}: {exception}"


def _exception(letter: DeadLetter, *, short: bool = False) -> str:
    if not letter.exception_type:
        return ""
    kind = letter.exception_type.rsplit(".", 1)[-1] if short else letter.exception_type
    return f"{kind}: {letter.exception_message}" if letter.exception_message else kind


def _cell(value: object) -> str:
    # One line per row: a multi-line exception message becomes one line of words.
    return printable(" ".join(str(value).split()))


def _iso(instant: datetime | None) -> str:
    return instant.isoformat() if instant is not None else "-"


def _indent(text: str) -> list[str]:
    return [f"  {line}" if line else "" for line in text.splitlines()]


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
