"""Reading framework header values strictly: what a consumer may believe about a delivery.

A broker holds whatever a producer (or an operator, or an attacker) put there, and the kernel does
arithmetic with these values: an attempt indexes retry delays, a priority goes back to a broker
that keeps 64 bits, times are compared with the clock and summed with durations. A value that
Conveyor never writes (an attempt of 0 or 2**70, a naive time that cannot be compared with an
aware clock, a time so near ``datetime.max`` that converting it to UTC overflows) is refused here,
so the message is dead-lettered as malformed instead of crashing or misleading the consumer.

Errors name the header, what was expected and the kind of value found, never the value: headers
end up in logs, and a forged one may be long or hold a secret.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from conveyor.core.errors import SerializationError
from conveyor.core.handlers import PRIORITY_RANGE
from conveyor.core.instants import LATEST

__all__ = [
    "MAX_ATTEMPT",
    "FIRST_ATTEMPTS",
    "read_attempt",
    "read_priority",
    "read_instant",
    "read_timestamp",
    "found",
]

#: The highest delivery attempt a header may carry: far beyond any retry policy, small enough
#: that every broker's integer keeps it.
MAX_ATTEMPT = 2**31 - 1

_DIGITS = re.compile(r"[0-9]{1,10}")
_SIGNED = re.compile(r"-?[0-9]{1,19}")
_INTEGER = re.compile(r"-?[0-9]+")
_OUTSIDE = "a whole number outside that range"

#: The attempts nearly every message carries, read without a pattern match: every delivery reads
#: its attempt, and all but a retried few say "1". Any other text goes through :func:`read_attempt`.
FIRST_ATTEMPTS: dict[str, int] = {str(n): n for n in range(1, 16)}


def found(value: str) -> str:
    """The kind of a header value, as an error names it: its length, never its text."""
    if not value:
        return "an empty string"
    return f"a string of {len(value)} character{'' if len(value) == 1 else 's'}"


def read_attempt(name: str, value: str | None) -> int:
    """A delivery attempt: a whole number from 1 to :data:`MAX_ATTEMPT` (absent means 1)."""
    if value is None:
        return 1
    known = FIRST_ATTEMPTS.get(value)
    if known is not None:
        return known
    expected = f"a whole number from 1 to {MAX_ATTEMPT}"
    if _DIGITS.fullmatch(value) is None:
        raise _malformed(name, expected, _kind(value))
    attempt = int(value)
    if not 1 <= attempt <= MAX_ATTEMPT:
        raise _malformed(name, expected, _OUTSIDE)
    return attempt


def read_priority(name: str, value: str | None, max_priority: int | None = None) -> int:
    """A priority: a signed 64-bit integer, at most the channel's ``max_priority`` if it has one."""
    if not value:
        return 0
    highest = PRIORITY_RANGE.stop - 1 if max_priority is None else max_priority
    expected = f"a whole number from {PRIORITY_RANGE.start} to {highest}"
    if _SIGNED.fullmatch(value) is None:
        raise _malformed(name, expected, _kind(value))
    priority = int(value)
    if not PRIORITY_RANGE.start <= priority <= highest:
        raise _malformed(name, expected, _OUTSIDE)
    return priority


def read_instant(name: str, value: str | None, *, due: bool = False) -> datetime | None:
    """An aware ISO 8601 instant, in UTC; None when absent.

    Args:
        name: the header, for the error.
        value: its text.
        due: the instant is a due time or an expiry, which the kernel compares with its clock
            and sends back to brokers: it must also be before
            :data:`~conveyor.core.instants.LATEST`, as every due time Conveyor writes is.
    """
    if not value:
        return None
    expected = "an ISO 8601 date and time with a UTC offset"
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise _malformed(name, expected, found(value)) from None
    if instant.tzinfo is not UTC:  # what Conveyor writes ("+00:00") reads as UTC already
        instant = _in_utc(name, instant, expected)
    if due and instant >= LATEST:
        raise _malformed(name, f"an instant before {LATEST.isoformat()}", "a later instant")
    return instant


def _in_utc(name: str, instant: datetime, expected: str) -> datetime:
    """An instant read with another offset, in UTC; a naive or unrepresentable one is malformed."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise _malformed(name, expected, "a date and time without one")
    try:
        return instant.astimezone(UTC)
    except OverflowError:  # a local time whose UTC reading is past datetime's range
        raise _malformed(name, expected, "an instant outside the range of a datetime") from None


def read_timestamp(name: str, value: str) -> datetime:
    """When a message was created: required, so an empty value is malformed, not absent."""
    instant = read_instant(name, value)
    if instant is None:
        raise _malformed(name, "an ISO 8601 date and time with a UTC offset", found(value))
    return instant


def _kind(value: str) -> str:
    return _OUTSIDE if _INTEGER.fullmatch(value) else found(value)


def _malformed(name: str, expected: str, what: str) -> SerializationError:
    return SerializationError(
        f"message headers are malformed: {name!r} expected {expected}, found {what}"
    )
