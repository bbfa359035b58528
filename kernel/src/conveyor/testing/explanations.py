"""Why an outcome assertion failed, in words: a headline, the near misses, a probable cause.

A failed ``assert_published`` should say as much as a passing one. The headline names what was
expected with its filters (``OrderPlaced by email_customer was not published.``); the nearest
candidates show, field by field, how each record of the right kind differs; a probable cause
names copies that went wrong (dead-lettered, raised to their caller, expired, ...) and may be
why. Records that matched a number of times the test did not expect, or matched a negative
assertion, are shown with what caused them. Everything here reads a ``Snapshot``, so one flow
always explains itself in the same words; :func:`~conveyor.testing.report.explain` lays it out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta

from conveyor.core.journal import Record, RecordKind
from conveyor.testing.flow import Copy, fold_copies
from conveyor.testing.formatting import format_duration, plural
from conveyor.testing.matching import Difference
from conveyor.testing.query import Query
from conveyor.testing.report import Candidate, Snapshot, explain

__all__ = [
    "headline",
    "missing",
    "miscounted",
    "unwanted",
    "wrong_retries",
    "retry_differences",
    "format_delays",
]

_NOT = {
    "sent": "was not sent",
    "published": "was not published",
    "asked": "was not asked",
    "handled": "was not handled",
    "failed": "did not fail",
    "retried": "was not retried",
    "expired": "did not expire",
    "dead-lettered": "was not dead-lettered",
}
_DID = {
    "sent": "was sent",
    "published": "was published",
    "asked": "was asked",
    "handled": "was handled",
    "failed": "failed",
    "retried": "was retried",
    "expired": "expired",
    "dead-lettered": "was dead-lettered",
}
_BAD_STATES = ("dead_lettered", "raised", "discarded", "expired", "error_handled", "rejected")


def headline(query: Query, *, nothing: bool = False) -> str:
    """``OrderPlaced by email_customer was not published.``: what did not happen."""
    note = f" (nothing was {query.verb})" if nothing else ""
    return f"{_said(query, _NOT)}{note}."


def missing(snapshot: Snapshot, query: Query) -> str:
    """Nothing matched ``query``: the nearest candidates of its kinds, or a probable cause."""
    pool = [r for r in snapshot.records if r.kind in query.kinds]
    scored = sorted(((query.differences(r), r) for r in pool), key=lambda p: (len(p[0]), p[1].seq))
    same_type = [(d, r) for d, r in scored if not any(x.path == "type" for x in d)]
    causes = _causes(snapshot.records, query)
    # Records of other types would only distract from a probable cause.
    shown = (same_type or scored) if same_type or not causes else []
    return explain(
        snapshot,
        headline(query, nothing=not pool),
        candidates=[Candidate(r, tuple(d)) for d, r in shown],
        candidates_title=f"Nearest candidates ({len(pool)} {query.verb} in all)",
        cause=causes,
    )


def miscounted(snapshot: Snapshot, query: Query, found: Sequence[Record], *, exactly: int) -> str:
    """``query`` matched ``found``, not ``exactly`` times (matching nothing: as :func:`missing`)."""
    if not found:
        return missing(snapshot, query)
    wanted = "once" if exactly == 1 else f"{exactly} times"
    return explain(
        snapshot, f"{_said(query, _DID)} {len(found)} times, not {wanted}.", offenders=found
    )


def unwanted(snapshot: Snapshot, query: Query, found: Sequence[Record]) -> str:
    """A negative assertion's ``query`` matched ``found``, which should not have happened."""
    return explain(
        snapshot,
        f"{_said(query, _DID)} ({plural(len(found), 'time')}), but should not have been.",
        offenders=found,
    )


def wrong_retries(
    snapshot: Snapshot,
    query: Query,
    copies: Iterable[Sequence[Record]],
    delays: Sequence[timedelta] | None,
    times: int | None,
) -> str:
    """Copies were retried (each given as its RETRIED records), but not as often or as late."""
    candidates = [
        Candidate(records[-1], tuple(retry_differences(records, delays, times)))
        for records in copies
    ]
    return explain(
        snapshot, headline(query), candidates=candidates, candidates_title="Retried copies"
    )


def retry_differences(
    records: Sequence[Record], delays: Sequence[timedelta] | None, times: int | None
) -> list[Difference]:
    """How one copy's delayed retries differ from ``times`` and ``delays`` (none: they match)."""
    actual = [r.delay for r in records]
    found = []
    if times is not None and len(actual) != times:
        found.append(Difference("retries", str(times), str(len(actual))))
    if delays is not None and actual != list(delays):
        found.append(Difference("delays", format_delays(delays), format_delays(actual)))
    return found


def format_delays(delays: Sequence[object]) -> str:
    """``[1s, 2s]``: retry delays as a headline or a difference shows them."""
    return (
        "["
        + ", ".join(format_duration(d) if isinstance(d, timedelta) else str(d) for d in delays)
        + "]"
    )


def _said(query: Query, phrases: Mapping[str, str]) -> str:
    """``OrderPlaced was published by email_customer``: the matcher, the verb, the filters."""
    return f"{query.matcher.describe()} {phrases[query.verb]}{query.filters()}"


def _causes(records: Iterable[Record], query: Query) -> list[str]:
    copies = fold_copies(records).values()
    bad = [c for c in copies if c.state in _BAD_STATES]
    if query.kinds == {RecordKind.HANDLED}:
        bad = [
            c
            for c in bad
            if query.matcher.matches(c.payload, c.message_type)
            and (query.endpoint is None or c.endpoint_id == query.endpoint)
        ]
    return [_fate(c) for c in bad[:3]]


def _fate(copy: Copy) -> str:
    last = next((r for r in reversed(copy.records) if r.exception is not None), copy.last)
    error = f": {last.exception}" if last.exception is not None else ""
    name = f"{copy.message_type} {copy.message_id} -> {copy.endpoint_id}"
    if copy.state == "dead_lettered":
        attempts = next(
            r.attempt for r in reversed(copy.records) if r.kind is RecordKind.DEAD_LETTERED
        )
        return f"{name} was dead-lettered after {plural(attempts, 'attempt')}{error}"
    if copy.state == "raised":
        return f"{name} raised to its caller{error}"
    if copy.state == "error_handled":
        return f"{name} failed and went to its error handler{error}"
    return f"{name} was {copy.state.replace('_', ' ')}{error}"
