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
from dataclasses import replace
from datetime import timedelta

from conveyor.core.journal import Record, RecordKind
from conveyor.testing.flow import Copy, fold_copies
from conveyor.testing.formatting import format_duration, plural
from conveyor.testing.matching import Difference, as_matcher
from conveyor.testing.query import Query
from conveyor.testing.report import Candidate, Snapshot, explain

__all__ = [
    "headline",
    "timers_matter",
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
    """``OrderPlaced by email_customer was not published.``: what did not happen.

    An assertion about any message reads ``No message was handled by Emails.welcome.``
    """
    if _any(query):
        return f"No message was {query.verb}{query.filters()}."
    note = f" (nothing was {query.verb})" if nothing else ""
    return f"{_said(query, _NOT)}{note}."


def _any(query: Query) -> bool:
    return isinstance(query.matcher, type(as_matcher(None)))


def timers_matter(snapshot: Snapshot, query: Query) -> bool:
    """Whether a message waiting on a timer could have changed this assertion's outcome.

    It could when it is a copy the query is about (the right message for the right handler),
    or when no message of the asserted type appears in the flow at all, so that whatever still
    waits may be what would have produced it. A near miss on field values is not about time.
    """
    matcher = query.matcher
    for p in snapshot.pending:
        if p.due <= snapshot.now:
            continue
        if matcher.matches(p.payload, p.message_type) and query.endpoint in (None, p.endpoint_id):
            return True
    return not any(
        all(d.path != "type" for d in matcher.differences(r.payload, r.message_type))
        for r in snapshot.records
    )


def _focus(snapshot: Snapshot, query: Query) -> set[str]:
    """Ids of the messages the query is about: their records stay in the timeline."""
    matcher = query.matcher
    if _any(query):
        return set()
    return {r.message_id for r in snapshot.records if matcher.matches(r.payload, r.message_type)}


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
        focus=_focus(snapshot, query),
        timers_matter=timers_matter(snapshot, query),
    )


def miscounted(snapshot: Snapshot, query: Query, found: Sequence[Record], *, exactly: int) -> str:
    """``query`` matched ``found``, not ``exactly`` times (matching nothing: as :func:`missing`)."""
    if not found:
        return missing(snapshot, query)
    return explain(
        snapshot,
        _count_headline(query, len(found), exactly),
        offenders=found,
        timers_matter=timers_matter(snapshot, query),
    )


def _count_headline(query: Query, count: int, exactly: int) -> str:
    """``hourly_billing handled 73 messages; expected 72.``: the count, then the expectation."""
    if query.verb == "handled" and query.endpoint is not None:
        what = "message" if _any(query) else f"{query.matcher.describe()} message"
        rest = replace(query, endpoint=None).filters()
        return f"{query.endpoint} handled {plural(count, what)}{rest}; expected {exactly}."
    if _any(query):
        were = "was" if count == 1 else "were"
        return (
            f"{plural(count, 'message')} {were} {query.verb}{query.filters()}; expected {exactly}."
        )
    wanted = "once" if exactly == 1 else f"{exactly} times"
    return f"{_said(query, _DID)} {count} times, not {wanted}."


def unwanted(snapshot: Snapshot, query: Query, found: Sequence[Record]) -> str:
    """A negative assertion's ``query`` matched ``found``, which should not have happened."""
    return explain(
        snapshot,
        f"{_said(query, _DID)} ({plural(len(found), 'time')}), but should not have been.",
        offenders=found,
        timers_matter=False,  # waiting longer can only add to what matched
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
        snapshot,
        headline(query),
        candidates=candidates,
        candidates_title="Retried copies",
        timers_matter=timers_matter(snapshot, query),
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
