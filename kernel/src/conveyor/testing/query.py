"""What a test asked for: a kind of record, a message matcher and the filters around it.

A :class:`Query` selects journal records (``published``, ``handled by email_customer``,
``failed with CardDeclined``) and, when nothing matches, says how each near miss differs, so a
failed assertion can show the nearest candidates instead of a bare "not found".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from conveyor.core.journal import ExceptionInfo, Record, RecordKind
from conveyor.testing.matching import Difference, Matcher, short_repr

__all__ = ["Query", "ExceptionSpec", "exception_matches", "describe_exception"]

ExceptionSpec = type[BaseException] | BaseException | str
"""An expected exception: a class (``isinstance``), an instance (same type and text) or a name."""


@dataclass(frozen=True, slots=True)
class Query:
    """A selection of journal records.

    Attributes:
        verb: what happened, for headlines: "published", "handled", "dead-lettered", ...
        kinds: the record kinds it looks at.
        matcher: the message matcher.
        endpoint: only records of this endpoint id.
        headers: only messages carrying these headers.
        exception: only failures with this exception.
        pattern: only failures whose exception text matches this regular expression.
        attempt: only records of this delivery attempt (for dead letters: attempts in all).
        attempt_label: how the attempt is named in diffs: "attempt" or "attempts".
        extra: more words for the headline, such as ``with delays [1s, 2s]``.
    """

    verb: str
    kinds: frozenset[RecordKind]
    matcher: Matcher
    endpoint: str | None = None
    headers: Mapping[str, str] | None = None
    exception: ExceptionSpec | None = None
    pattern: str | None = None
    attempt: int | None = None
    attempt_label: str = "attempt"
    extra: tuple[str, ...] = field(default=())

    def accepts(self, record: Record) -> bool:
        if record.kind not in self.kinds:
            return False
        if self.endpoint is not None and record.endpoint_id != self.endpoint:
            return False
        if self.attempt is not None and record.attempt != self.attempt:
            return False
        if self.headers and _header_differences(record, self.headers):
            return False
        if self.exception is not None and not exception_matches(record.exception, self.exception):
            return False
        if self.pattern is not None and (
            record.exception is None or re.search(self.pattern, record.exception.message) is None
        ):
            return False
        return self.matcher.matches(record.payload, record.message_type)

    def select(self, records: tuple[Record, ...]) -> list[Record]:
        return [r for r in records if self.accepts(r)]

    def differences(self, record: Record) -> list[Difference]:
        """How a record of the right kind misses this query, field by field."""
        found = list(self.matcher.differences(record.payload, record.message_type))
        if self.endpoint is not None and record.endpoint_id != self.endpoint:
            found.append(Difference("handler", self.endpoint, str(record.endpoint_id)))
        if self.attempt is not None and record.attempt != self.attempt:
            found.append(Difference(self.attempt_label, str(self.attempt), str(record.attempt)))
        if self.headers:
            found.extend(_header_differences(record, self.headers))
        if self.exception is not None and not exception_matches(record.exception, self.exception):
            found.append(
                Difference(
                    "exception",
                    describe_exception(self.exception),
                    str(record.exception) if record.exception else "none",
                )
            )
        if self.pattern is not None and (
            record.exception is None or re.search(self.pattern, record.exception.message) is None
        ):
            found.append(
                Difference(
                    "exception text",
                    f"matching {self.pattern!r}",
                    repr(record.exception.message) if record.exception else "none",
                )
            )
        return found

    def describe(self) -> str:
        """``OrderPlaced by email_customer with CardDeclined``: the matcher and its filters."""
        return f"{self.matcher.describe()}{self.filters()}"

    def filters(self) -> str:
        """`` by email_customer with CardDeclined``: the filters alone, each after a space."""
        parts = [""]
        if self.endpoint is not None:
            parts.append(f"by {self.endpoint}")
        if self.headers:
            parts.append(f"with headers {dict(self.headers)!r}")
        if self.exception is not None:
            parts.append(f"with {describe_exception(self.exception)}")
        if self.pattern is not None:
            parts.append(f"matching {self.pattern!r}")
        if self.attempt is not None:
            parts.append(
                f"after {self.attempt} attempts"
                if self.attempt_label == "attempts"
                else f"on attempt {self.attempt}"
            )
        parts.extend(self.extra)
        return " ".join(parts)


def _header_differences(record: Record, expected: Mapping[str, str]) -> list[Difference]:
    actual: Mapping[str, object] = record.headers if record.headers is not None else {}
    found = []
    for name, value in expected.items():
        got = actual.get(name)
        if got != value:
            found.append(
                Difference(f"header {name}", repr(value), "missing" if got is None else repr(got))
            )
    return found


def exception_matches(info: ExceptionInfo | None, expected: ExceptionSpec) -> bool:
    """Whether a recorded exception is the expected one (by class, instance or name)."""
    if info is None:
        return False
    if isinstance(expected, str):
        return expected in (info.type_name, info.qualified_name)
    if isinstance(expected, BaseException):
        return exception_matches(info, type(expected)) and info.message == str(expected)
    if info.error is not None:
        return isinstance(info.error, expected)
    return (info.module, info.type_name) == (expected.__module__, expected.__qualname__)


def describe_exception(expected: ExceptionSpec) -> str:
    if isinstance(expected, str):
        return expected
    if isinstance(expected, BaseException):
        return short_repr(expected)
    return expected.__qualname__
