"""Failure output: what a test reads when an assertion about a message flow fails.

The order is fixed (reference/test-harnesses.md section 12.6): a one-line headline; the nearest
candidates with a field-by-field diff (or, for a negative assertion, what matched and what
caused it); a probable cause; the flow's timeline in virtual time, indented by causation;
pending messages and timers, with a hint when settling did not move the clock; each failed
attempt's exception and where it was raised; the line that reruns the test. Every line fits the
width (92 columns by default, so that pytest's 8-column "E" prefix still fits in 100),
and the same flow always prints the same text.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePath

from conveyor.core.journal import ExceptionInfo, Record, RecordKind
from conveyor.testing.flow import (
    BUS_KINDS,
    Pending,
    causal_depths,
    causal_parents,
    first_bus_records,
)
from conveyor.testing.formatting import format_due, format_duration, format_offset, plural
from conveyor.testing.matching import Difference, short_repr

__all__ = [
    "FlowAssertionError",
    "Snapshot",
    "Candidate",
    "explain",
    "timeline",
    "pending_lines",
    "failure_lines",
    "record_line",
    "format_duration",
    "format_offset",
]

_TIMELINE_LIMIT = 40
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
) -> str:
    """The full failure text for one failed assertion."""
    width = snapshot.width
    lines = [_fit(headline, width)]
    if candidates:
        shown = candidates[:_CANDIDATES]
        more = (
            f", {len(candidates) - len(shown)} more not shown"
            if len(candidates) > len(shown)
            else ""
        )
        lines += ["", f"{candidates_title}{more}:"]
        for candidate in shown:
            lines.append(_fit(f"  {_identify(candidate.record, snapshot.origin)}", width))
            lines += [_fit(f"      {d}", width) for d in candidate.differences]
            if not candidate.differences:
                lines.append(_fit(f"      {short_repr(candidate.record.payload, width)}", width))
    if offenders:
        parents = causal_parents(snapshot.records)
        by_id = first_bus_records(snapshot.records)
        lines += ["", "Matching records:"]
        for record in offenders[:_CANDIDATES]:
            lines.append(_fit(f"  {_identify(record, snapshot.origin)}", width))
            chain = _chain(record.message_id, parents, by_id)
            if chain:
                lines.append(_fit(f"      caused by {chain}", width))
            lines.append(_fit(f"      {short_repr(record.payload, width)}", width))
    if cause:
        lines += ["", "Probable cause:", *(_fit(f"  {line}", width) for line in cause)]
    for title, body in sections:
        lines += ["", f"{title}:", *(_fit(f"  {line}", width) for line in body)]
    lines += ["", *timeline(snapshot)]
    lines += ["", *pending_lines(snapshot)]
    failures = failure_lines(snapshot)
    if failures:
        lines += ["", *failures]
    if snapshot.replay:
        lines += ["", _fit(snapshot.replay, width)]
    return "\n".join(lines)


# ---------------------------------------------------------------------- timeline


def timeline(snapshot: Snapshot, limit: int = _TIMELINE_LIMIT) -> list[str]:
    """The flow, one aligned line per record, indented by causal depth.

    A copy's ``queued`` step is left out when the copy has a later record and no delay: the
    later line names the same channel and endpoint, and a ten-message flow stays on one
    screen. ``Harness.transcript()`` keeps every record.
    """
    title = f"Timeline (virtual time since {_instant(snapshot.origin)}):"
    if not snapshot.records:
        return [title, "  nothing was sent, published or asked"]
    depths = causal_depths(causal_parents(snapshot.records))
    records = _without_plain_queueing(snapshot.records)
    rows = [_columns(r, snapshot.origin, depths.get(r.message_id, 0)) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    widths[3] = min(widths[3], 40)
    lines = []
    for row in rows:
        text = "  ".join(
            [
                f"  {row[0]:>{widths[0]}}",
                f"{row[1]:<{widths[1]}}",
                f"{row[2]:<{widths[2]}}",
                f"{row[3]:<{widths[3]}}",
                *(part for part in row[4:] if part),
            ]
        )
        lines.append(_fit(text.rstrip(), snapshot.width))
    if len(lines) > limit:
        head, tail = 10, limit - 11
        hidden = len(lines) - head - tail
        lines = [
            *lines[:head],
            f"  … {hidden} records not shown (messaging.transcript() has them all) …",
            *lines[-tail:],
        ]
    return [title, *lines]


def _without_plain_queueing(records: tuple[Record, ...]) -> list[Record]:
    later: set[tuple[str, str | None]] = set()
    kept: list[Record] = []
    for record in reversed(records):
        key = (record.message_id, record.endpoint_id)
        if record.kind is RecordKind.QUEUED and record.delay is None and key in later:
            continue
        later.add(key)
        kept.append(record)
    return kept[::-1]


def record_line(record: Record, origin: datetime, width: int = 92) -> str:
    """One record as a single unaligned line (strict teardown lists, short reports)."""
    row = _columns(record, origin, 0)
    return _fit("  ".join(part for part in row if part), width)


def _columns(r: Record, origin: datetime, depth: int) -> tuple[str, str, str, str, str, str]:
    indent = "  " * min(depth, 6)
    return (
        format_offset(r.at, origin),
        f"#{r.seq}",
        r.kind.value,
        f"{indent}{r.message_type} {r.message_id}",
        _where(r),
        _outcome(r),
    )


def _where(r: Record) -> str:
    if r.endpoint_id and r.channel:
        return f"{r.where} -> {r.endpoint_id}"
    if r.endpoint_id:
        return f"-> {r.endpoint_id}"
    return r.where or ""


def _outcome(r: Record) -> str:
    kind = r.kind
    if kind in BUS_KINDS:
        return short_repr(r.payload, 48)
    if kind is RecordKind.QUEUED:
        return f"delayed {format_duration(r.delay)}" if r.delay else ""
    if kind is RecordKind.FAILED:
        return f"attempt {r.attempt}: {_exception(r.exception)}"
    if kind is RecordKind.RETRIED:
        delay = format_duration(r.delay) if r.delay is not None else "?"
        return f"attempt {r.attempt + 1} in {delay}"
    if kind is RecordKind.DEAD_LETTERED:
        reason = _exception(r.exception) if r.exception else r.detail.split(";")[0]
        return f"after {plural(r.attempt, 'attempt')}: {reason}"
    if kind is RecordKind.ERROR_HANDLED:
        return f"to {r.detail}: {_exception(r.exception)}"
    if kind in (RecordKind.DISCARDED, RecordKind.REQUEUED):
        return _exception(r.exception)
    if kind is RecordKind.TICKED:
        return ""
    if kind is RecordKind.HANDLED:
        return f"attempt {r.attempt}" if r.attempt > 1 else ""
    return r.detail


def _exception(info: ExceptionInfo | None) -> str:
    return _cut(str(info), 60) if info is not None else ""


# ---------------------------------------------------------------------- pending


def pending_lines(snapshot: Snapshot) -> list[str]:
    """Messages still waiting, timers, and a hint when settling did not move the clock."""
    origin, now = snapshot.origin, snapshot.now
    at = format_offset(now, origin)
    if not snapshot.pending:
        lines = [f"Pending: nothing (the clock stands at {at})."]
    else:
        lines = [f"Pending ({len(snapshot.pending)}; the clock stands at {at}):"]
        for p in snapshot.pending:
            due = format_due(p.due, now, origin)
            lines.append(
                _fit(
                    f"  {p.message_type} {p.message_id} on {p.where} -> "
                    f"{p.endpoint_id}: {p.state}, attempt {p.attempt}, {due}",
                    snapshot.width,
                )
            )
    if snapshot.schedules:
        shown = ", ".join(
            f"{name} at {format_offset(due, origin)}" for name, due in snapshot.schedules
        )
        lines.append(_fit(f"Next scheduled ticks: {shown}", snapshot.width))
    waiting = [p for p in snapshot.pending if p.due > now]
    if waiting and not snapshot.advance_time:
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
            _fit(
                f"  {format_offset(record.at, snapshot.origin)} #{record.seq} "
                f"{record.message_type} {record.message_id}{where}, attempt "
                f"{record.attempt}{times}: {record.exception}",
                snapshot.width,
            )
        )
        location = raised_at(record.exception)
        if location:
            lines.append(_fit(f"      raised at {location}", snapshot.width))
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


def _instant(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at.microsecond == 0 else at.isoformat()


def _identify(record: Record, origin: datetime) -> str:
    where = f" {_where(record)}" if record.endpoint_id or record.channel else ""
    return (
        f"#{record.seq} {record.message_type} {record.message_id}{where}, "
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


def _cut(text: str, limit: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fit(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"
