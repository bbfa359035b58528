"""Strict teardown: a test may not leave failures, dead letters or work it did not look at.

Wolverine fails a tracked session on any exception; the lesson of its issue #4125 is that each
check needs its own switch. Here there are three, each off on its own (``Strictness``):
unasserted failures (failed attempts and expiries no assertion matched, and no exception carried
to the test), unasserted dead letters (still in the store), and pending messages the test
neither settled nor inspected. Teardown never settles: unsettled work is what it reports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from conveyor.core.journal import Record
from conveyor.testing.flow import Pending
from conveyor.testing.formatting import format_due, plural
from conveyor.testing.harness import Harness
from conveyor.testing.report import explain, record_line
from conveyor.testing.setup import Strictness

__all__ = ["strict_report"]

_SHOWN = 10
_UNASSERTED_FAILURES = (
    "Unasserted failures (assert them with assert_failed, assert_retried, assert_expired or\n"
    "assert_dead_lettered, or allow them: @pytest.mark.conveyor(allow_failures=True))"
)
_UNASSERTED_DEAD_LETTERS = (
    "Unasserted dead letters (assert them with assert_dead_lettered, or allow them: "
    "@pytest.mark.conveyor(allow_dead_letters=True))"
)
_UNSETTLED_WORK = (
    "Unsettled work (settle it with an assertion or messaging.settle(), inspect it with\n"
    "assert_pending, or allow it: @pytest.mark.conveyor(allow_pending=True))"
)
_T = TypeVar("_T")


def strict_report(harness: Harness, strictness: Strictness) -> str | None:
    """The failure text for what ``harness`` was left with, or None when all is well."""
    origin, width = harness.origin, harness.width
    problems: list[str] = []
    sections: list[tuple[str, Sequence[str]]] = []

    def record(r: Record) -> str:
        return record_line(r, origin, width - 2)

    if strictness.failures:
        failures = harness.unasserted_failures()
        if failures:
            problems.append(plural(len(failures), "unasserted failure"))
            sections.append(_section(_UNASSERTED_FAILURES, failures, record))
    if strictness.dead_letters:
        letters = harness.unasserted_dead_letters()
        if letters:
            problems.append(plural(len(letters), "unasserted dead letter"))
            sections.append(_section(_UNASSERTED_DEAD_LETTERS, letters, record))
    if strictness.pending:
        pending = harness.uninspected_pending()
        if pending:
            problems.append(plural(len(pending), "pending message") + " not inspected")
            now = harness.clock.now()

            def waiting(p: Pending) -> str:
                return (
                    f"{p.message_type} {p.message_id} on {p.where} -> {p.endpoint_id}: "
                    f"{p.state}, {format_due(p.due, now, origin)}"
                )

            sections.append(_section(_UNSETTLED_WORK, pending, waiting))
    if not problems:
        return None
    listed = (
        problems[0] if len(problems) == 1 else (", ".join(problems[:-1]) + " and " + problems[-1])
    )
    return explain(harness.snapshot(), f"Strict teardown found {listed}.", sections=sections)


def _section(
    title: str, items: Sequence[_T], line: Callable[[_T], str]
) -> tuple[str, Sequence[str]]:
    """A titled list: the first items, one line each, then how many more there are."""
    shown = [line(item) for item in items[:_SHOWN]]
    more = [f"… and {len(items) - _SHOWN} more"] if len(items) > _SHOWN else []
    return title, shown + more
