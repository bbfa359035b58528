"""Strict teardown: a test may not leave failures, dead letters or work it did not look at.

Wolverine fails a tracked session on any exception; the lesson of its issue #4125 is that each
check needs its own switch. Here there are three, each off on its own (``Strictness``):
unasserted failures (failed attempts and expiries no assertion matched, and no exception carried
to the test), unasserted dead letters (still in the store), and pending messages the test
neither settled nor inspected. Teardown never settles: unsettled work is what it reports.
"""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.testing.harness import Harness
from conveyor.testing.report import explain, format_offset, record_line
from conveyor.testing.setup import Strictness

__all__ = ["strict_report"]


def strict_report(harness: Harness, strictness: Strictness) -> str | None:
    """The failure text for what ``harness`` was left with, or None when all is well."""
    origin, width = harness.origin, harness.width
    problems: list[str] = []
    sections: list[tuple[str, Sequence[str]]] = []
    if strictness.failures:
        failures = harness.unasserted_failures()
        if failures:
            problems.append(_count(len(failures), "unasserted failure"))
            sections.append(
                (
                    "Unasserted failures (assert them with assert_failed, assert_retried, "
                    "assert_expired or\nassert_dead_lettered, or allow them: "
                    "@pytest.mark.conveyor(allow_failures=True))",
                    [record_line(r, origin, width - 2) for r in failures[:10]] + _more(failures),
                )
            )
    if strictness.dead_letters:
        letters = harness.unasserted_dead_letters()
        if letters:
            problems.append(_count(len(letters), "unasserted dead letter"))
            sections.append(
                (
                    "Unasserted dead letters (assert them with assert_dead_lettered, or allow "
                    "them: @pytest.mark.conveyor(allow_dead_letters=True))",
                    [record_line(r, origin, width - 2) for r in letters[:10]] + _more(letters),
                )
            )
    if strictness.pending:
        pending = harness.uninspected_pending()
        if pending:
            problems.append(_count(len(pending), "pending message") + " not inspected")
            now = harness.clock.now()
            sections.append(
                (
                    "Unsettled work (settle it with an assertion or messaging.settle(), inspect it "
                    "with\nassert_pending, or allow it: @pytest.mark.conveyor(allow_pending=True))",
                    [
                        f"{p.message_type} {p.message_id} on {p.channel} -> {p.endpoint_id}: "
                        f"{p.state}, "
                        + (
                            "runnable now"
                            if p.due <= now
                            else f"due at {format_offset(p.due, origin)}"
                        )
                        for p in pending[:10]
                    ]
                    + _more(pending),
                )
            )
    if not problems:
        return None
    listed = (
        problems[0] if len(problems) == 1 else (", ".join(problems[:-1]) + " and " + problems[-1])
    )
    return explain(harness.snapshot(), f"Strict teardown found {listed}.", sections=sections)


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _more(items: Sequence[object]) -> list[str]:
    return [f"… and {len(items) - 10} more"] if len(items) > 10 else []
