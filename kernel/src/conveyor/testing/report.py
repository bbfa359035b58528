"""Failure output: what a test reads when an assertion about a message flow fails.

The order is fixed (reference/test-harnesses.md section 12.6): a one-line headline; the nearest
candidates with a field-by-field diff (or, for a negative assertion, what matched and what
caused it); a probable cause; the flow's timeline in virtual time, indented by causation;
pending messages and timers, with a hint when settling did not move the clock; each failed
attempt's exception and where it was raised; the line that reruns the test. Every listing line
fits the width (92 columns by default, so that pytest's 8-column "E" prefix still fits in 100);
the headline and the rerun line are never cut, since a reader searches for one and copies the
other. The same flow always prints the same text. ``flow_section`` is the flow alone, which the
plugin appends to any failed test that used a harness (a plain ``assert`` included).
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePath

from conveyor.core.journal import ExceptionInfo, Record, RecordKind
from conveyor.testing.flow import Pending, causal_parents, first_bus_records
from conveyor.testing.formatting import (
    fit,
    format_due,
    format_duration,
    format_offset,
    plural,
    wrap,
)
from conveyor.testing.matching import Difference, short_repr
from conveyor.testing.timeline import record_line, timeline, where

__all__ = [
    "FlowAssertionError",
    "Snapshot",
    "Candidate",
    "explain",
    "flow_section",
    "flow_lines",
    "timeline",
    "pending_lines",
    "failure_lines",
    "record_line",
    "format_duration",
    "format_offset",
]

_CANDIDATES = 3


class FlowAssertionError(AssertionError):
    """An assertion about a message flow failed; its text is the full explanation."""


# pytest prints an exception's module before its name on the first line of the failure; the
# headline is what matters there, so the class presents itself as a builtin-style name.
FlowAssertionError.__module__ = "builtins"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the failure output shows, taken at the moment an assertion failed."""

    records: tuple[Record, ...]
    origin: datetime
    now: datetime
    pending: tuple[Pending, ...] = ()
    schedules: tuple[tuple[str, datetime], ...] = ()
    advance_time: bool = False
    replay: str | None = None
    width: int = 92


@dataclass(frozen=True, slots=True)
class Candidate:
    """A record that nearly matched, with how it differs."""

    record: Record
    differences: tuple[Difference, ...] = field(default=())


def explain(
    snapshot: Snapshot,
    headline: str,
    *,
    candidates: Sequence[Candidate] = (),
    candidates_title: str = "Nearest candidates",
    offenders: Sequence[Record] = (),
    cause: Sequence[str] = (),
    sections: Sequence[tuple[str, Sequence[str]]] = (),
    focus: Collection[str] = (),
    timers_matter: bool = True,
) -> str:
    """The full failure text for one failed assertion.

    Args:
        focus: ids of the messages under assertion; the timeline always shows their records
            (candidates' and offenders' messages are added).
        timers_matter: whether a message waiting on a timer could have changed the outcome;
            only then does the hint about settling and the clock show.
    """
    width = snapshot.width
    lines = [headline]  # never cut: it is what a reader searches for
    if candidates:
        shown = candidates[:_CANDIDATES]
        more = (
            f", {len(candidates) - len(shown)} more not shown"
            if len(candidates) > len(shown)
            else ""
        )
        lines += ["", f"{candidates_title}{more}:"]
        for candidate in shown:
            lines.append(fit(f"  {_identify(candidate.record, snapshot.origin)}", width))
            lines += [fit(f"      {d}", width) for d in candidate.differences]
            if not candidate.differences:
                lines.append(fit(f"      {short_repr(candidate.record.payload, width)}", width))
    if offenders:
        parents = causal_parents(snapshot.records)
        by_id = first_bus_records(snapshot.records)
        lines += ["", "Matching records:"]
        for record in offenders[:_CANDIDATES]:
            lines.append(fit(f"  {_identify(record, snapshot.origin)}", width))
            chain = _chain(record.message_id, parents, by_id)
            if chain:
                lines.append(fit(f"      caused by {chain}", width))
            lines.append(fit(f"      {short_repr(record.payload, width)}", width))
    if cause:
        lines += ["", "Probable cause:", *(fit(f"  {line}", width) for line in cause)]
    for title, body in sections:
        lines += ["", f"{title}:", *(fit(f"  {line}", width) for line in body)]
    focused = {
        *focus,
        *(c.record.message_id for c in candidates[:_CANDIDATES]),
        *(r.message_id for r in offenders[:_CANDIDATES]),
    }
    lines += ["", *flow_lines(snapshot, focus=focused, timers_matter=timers_matter)]
    return "\n".join(lines)


def flow_section(snapshot: Snapshot, *, title: str | None = None) -> str:
    """The flow alone (timeline, pending work, failures, rerun line): for any failed test.

    A plain ``assert`` on a side effect fails without saying where the flow stood; the plugin
    appends this section to every failed test that used a harness. Messages still queued are
    the usual reason, so a hint names the ways to settle first.
    """
    lines = [title, ""] if title else []
    lines += flow_lines(snapshot, timers_matter=True, replay=False)
    runnable = [p for p in snapshot.pending if p.due <= snapshot.now]
    if runnable:
        waits = "waits" if len(runnable) == 1 else "wait"
        lines += [
            "",
            *wrap(
                f"Hint: {plural(len(runnable), 'message')} still {waits} for a consumer, so "
                f"their handlers have not run yet. Settle before asserting on side effects: call "
                f"messaging.settle(), or use an assertion such as messaging.assert_handled(...), "
                f"which settles first.",
                snapshot.width,
            ),
        ]
    if snapshot.replay:
        lines += ["", snapshot.replay]
    return "\n".join(lines)


def flow_lines(
    snapshot: Snapshot,
    *,
    focus: Collection[str] = (),
    timers_matter: bool = True,
    replay: bool = True,
) -> list[str]:
    """Timeline, pending work, failed attempts and the rerun line (never cut: it is copied)."""
    lines = timeline(snapshot.records, snapshot.origin, width=snapshot.width, focus=focus)
    lines += ["", *pending_lines(snapshot, timers_matter=timers_matter)]
    failures = failure_lines(snapshot)
    if failures:
        lines += ["", *failures]
    if replay and snapshot.replay:
        lines += ["", snapshot.replay]
    return lines


# ---------------------------------------------------------------------- pending


def pending_lines(snapshot: Snapshot, *, timers_matter: bool = True) -> list[str]:
    """Messages still waiting, timers, and a hint when settling did not move the clock.

    The hint shows only when ``timers_matter``: when the caller found that a message waiting on
    a timer could have changed the outcome.
    """
    origin, now = snapshot.origin, snapshot.now
    at = format_offset(now, origin)
    if not snapshot.pending:
        lines = [f"Pending: nothing (the clock stands at {at})."]
    else:
        lines = [f"Pending ({len(snapshot.pending)}; the clock stands at {at}):"]
        for p in snapshot.pending:
            due = format_due(p.due, now, origin)
            lines.append(
                fit(
                    f"  {p.message_type} {p.message_id} on {p.where} -> "
                    f"{p.endpoint_id}: {p.state}, attempt {p.attempt}, {due}",
                    snapshot.width,
                )
            )
    if snapshot.schedules:
        shown = ", ".join(
            f"{name} at {format_offset(due, origin)}" for name, due in snapshot.schedules
        )
        lines.append(fit(f"Next scheduled ticks: {shown}", snapshot.width))
    waiting = [p for p in snapshot.pending if p.due > now]
    if waiting and timers_matter and not snapshot.advance_time:
        first = min(p.due for p in waiting)
        count = plural(len(waiting), "message")
        lines += [
            f"Hint: settling does not move the clock unless asked, and {count} "
            f"wait{'s' if len(waiting) == 1 else ''} on a timer",
            f"  (next due at {format_offset(first, origin)}). Opt in with "
            f"@pytest.mark.conveyor(advance_time=True),",
            "  or call messaging.settle(advance_time=True) or messaging.advance(...) first.",
        ]
    return lines


# ---------------------------------------------------------------------- failures


def failure_lines(snapshot: Snapshot) -> list[str]:
    """Each failed attempt with its exception and where it was raised; repeats folded."""
    failed = [r for r in snapshot.records if r.kind is RecordKind.FAILED]
    if not failed:
        return []
    groups: list[tuple[Record, int]] = []
    for record in failed:
        if groups and _same_failure(groups[-1][0], record):
            groups[-1] = (groups[-1][0], groups[-1][1] + 1)
        else:
            groups.append((record, 1))
    lines = [f"Failures ({len(failed)}):"]
    for record, count in groups:
        times = f" (x{count})" if count > 1 else ""
        where = f" -> {record.endpoint_id}" if record.endpoint_id else ""
        lines.append(
            fit(
                f"  {format_offset(record.at, snapshot.origin)} #{record.seq} "
                f"{record.message_type} {record.message_id}{where}, attempt "
                f"{record.attempt}{times}: {record.exception}",
                snapshot.width,
            )
        )
        location = raised_at(record.exception)
        if location:
            lines.append(fit(f"      raised at {location}", snapshot.width))
    return lines


def _same_failure(a: Record, b: Record) -> bool:
    return (a.message_id, a.endpoint_id, a.attempt, str(a.exception)) == (
        b.message_id,
        b.endpoint_id,
        b.attempt,
        str(b.exception),
    )


_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def raised_at(info: ExceptionInfo | None) -> str:
    """``shop.py:31 in charge``: the innermost frame of a recorded exception."""
    if info is None:
        return ""
    error = info.error
    if error is not None and error.__traceback__ is not None:
        frame = traceback.extract_tb(error.__traceback__)[-1]
        return f"{PurePath(frame.filename).name}:{frame.lineno} in {frame.name}"
    frames = _FRAME.findall(info.traceback or "")
    if not frames:
        return ""
    filename, line, name = frames[-1]
    return f"{PurePath(filename).name}:{line} in {name}"


# ---------------------------------------------------------------------- small helpers


def _identify(record: Record, origin: datetime) -> str:
    place = f" {where(record)}" if record.endpoint_id or record.channel else ""
    return (
        f"#{record.seq} {record.message_type} {record.message_id}{place}, "
        f"{record.kind.value} at {format_offset(record.at, origin)}"
    )


def _chain(message_id: str, parents: dict[str, str | None], by_id: dict[str, Record]) -> str:
    links: list[str] = []
    current = parents.get(message_id)
    while current is not None and len(links) < 4:
        record = by_id.get(current)
        links.append(
            f"{record.message_type} {current} ({record.kind.value})" if record else current
        )
        current = parents.get(current)
    return " <- ".join(links)
