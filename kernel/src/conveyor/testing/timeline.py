"""The timeline of a flow: one aligned line per journal record, in virtual time.

A failure is explained by a handful of records, and a long flow buries them. So the timeline
shortens a flow in two ways that never hide what the assertion was about: a run of schedule ticks
that did the same thing each time is folded into its first tick, one summary line and its last;
and when the flow is still too long, it keeps the first and last records and every record of the
messages under assertion (``focus``), and says how many it left out between them.
``Harness.transcript()`` keeps every record.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from conveyor.core.journal import ExceptionInfo, Record, RecordKind
from conveyor.testing.flow import BUS_KINDS, causal_depths, causal_parents
from conveyor.testing.formatting import cut, fit, format_duration, format_offset, plural
from conveyor.testing.matching import short_repr

__all__ = ["timeline", "record_line", "where", "TIMELINE_LIMIT"]

TIMELINE_LIMIT = 40
"""The most record lines a timeline prints before it leaves some out."""

_HEAD = 10
_TICK_RUN = 3  # a run of this many identical ticks, or more, is folded


def timeline(
    records: Sequence[Record],
    origin: datetime,
    *,
    width: int = 92,
    limit: int = TIMELINE_LIMIT,
    focus: Collection[str] = (),
) -> list[str]:
    """The flow as aligned lines, indented by causal depth, with its title first.

    A copy's ``queued`` step is left out when the copy has a later record and no delay: the
    later line names the same channel and endpoint, and a ten-message flow stays on one
    screen. ``focus`` holds the ids of messages whose records are always shown.
    """
    title = f"Timeline (virtual time since {_instant(origin)}):"
    if not records:
        return [title, "  nothing was sent, published or asked"]
    depths = causal_depths(causal_parents(records))
    shown = _without_plain_queueing(records)
    entries: list[Record | str] = _fold_ticks(shown, origin)
    rows = [
        _columns(e, origin, depths.get(e.message_id, 0)) for e in entries if isinstance(e, Record)
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    widths[3] = min(widths[3], 40)
    lines: list[tuple[str, bool]] = []
    row_iter = iter(rows)
    for entry in entries:
        if isinstance(entry, str):
            lines.append((fit(entry, width), False))
            continue
        row = next(row_iter)
        text = "  ".join(
            [
                f"  {row[0]:>{widths[0]}}",
                f"{row[1]:<{widths[1]}}",
                f"{row[2]:<{widths[2]}}",
                f"{row[3]:<{widths[3]}}",
                *(part for part in row[4:] if part),
            ]
        )
        lines.append((fit(text.rstrip(), width), entry.message_id in focus))
    return [title, *_shorten(lines, limit)]


def _shorten(lines: list[tuple[str, bool]], limit: int) -> list[str]:
    """Keep the head, the tail and focused lines; say how many were left out in each gap."""
    if len(lines) <= limit:
        return [text for text, _ in lines]
    tail = limit - _HEAD - 1
    keep = set(range(_HEAD)) | set(range(len(lines) - tail, len(lines)))
    focused = [i for i, (_, wanted) in enumerate(lines) if wanted and i not in keep]
    keep |= set(focused[:limit])
    out: list[str] = []
    hidden = 0
    for i, (text, _) in enumerate(lines):
        if i in keep:
            if hidden:
                out.append(_hidden(hidden))
                hidden = 0
            out.append(text)
        else:
            hidden += 1
    if hidden:
        out.append(_hidden(hidden))
    return out


def _hidden(count: int) -> str:
    return f"  … {plural(count, 'record')} not shown (messaging.transcript() has them all) …"


def _without_plain_queueing(records: Sequence[Record]) -> list[Record]:
    later: set[tuple[str, str | None]] = set()
    kept: list[Record] = []
    for record in reversed(records):
        key = (record.message_id, record.endpoint_id)
        if record.kind is RecordKind.QUEUED and record.delay is None and key in later:
            continue
        later.add(key)
        kept.append(record)
    return kept[::-1]


def _fold_ticks(records: list[Record], origin: datetime) -> list[Record | str]:
    """Fold runs of schedule ticks that each did the same thing into first, summary, last."""
    ticks = {r.message_id for r in records if r.kind is RecordKind.TICKED}
    groups: list[list[Record]] = []
    for record in records:
        if groups and record.message_id in ticks and groups[-1][0].message_id == record.message_id:
            groups[-1].append(record)
        else:
            groups.append([record])
    out: list[Record | str] = []
    run: list[list[Record]] = []

    def flush() -> None:
        if len(run) >= _TICK_RUN:
            first, last = run[0], run[-1]
            out.extend(first)
            middle = run[1:-1]
            endpoint = first[0].endpoint_id or first[0].message_type
            did = ", ".join(r.kind.value for r in first[1:]) or "nothing"
            out.append(
                f"  … {endpoint} ticked {plural(len(middle), 'more time')} from "
                f"{format_offset(middle[0][0].at, origin)} to "
                f"{format_offset(middle[-1][0].at, origin)}, each {did} …"
            )
            out.extend(last)
        else:
            for group in run:
                out.extend(group)
        run.clear()

    for group in groups:
        head = group[0]
        if head.kind is RecordKind.TICKED and all(r.exception is None for r in group):
            if run and _shape(run[-1]) != _shape(group):
                flush()
            run.append(group)
            continue
        flush()
        out.extend(group)
    flush()
    return out


def _shape(group: list[Record]) -> tuple[object, ...]:
    return tuple((r.kind, r.endpoint_id, r.message_type) for r in group)


def record_line(record: Record, origin: datetime, width: int = 92) -> str:
    """One record as a single unaligned line (strict teardown lists, short reports)."""
    row = _columns(record, origin, 0)
    return fit("  ".join(part for part in row if part), width)


def _columns(r: Record, origin: datetime, depth: int) -> tuple[str, str, str, str, str, str]:
    indent = "  " * min(depth, 6)
    return (
        format_offset(r.at, origin),
        f"#{r.seq}",
        r.kind.value,
        f"{indent}{r.message_type} {r.message_id}",
        where(r),
        _outcome(r),
    )


def where(r: Record) -> str:
    """``payments -> charge``: the channel (``orders[orders.a]``: dynamic) and the endpoint."""
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
    return cut(str(info), 60) if info is not None else ""


def _instant(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at.microsecond == 0 else at.isoformat()
