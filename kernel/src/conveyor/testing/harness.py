"""``Harness``: a ``Messaging`` with assertions about what its messages did.

Every assertion about an outcome settles first (runs every consumer until nothing is runnable,
moving the clock only when the test asked for it), so ``assert_published`` and
``assert_not_published`` are both exact and instant. Assertions about pending work do not
settle: settling would run exactly what they look at. A failed assertion raises
:class:`~conveyor.testing.report.FlowAssertionError` with the full explanation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from conveyor.journal import Record, RecordKind
from conveyor.testing.core import (
    _ASKED,
    _DEAD,
    _EXPIRED,
    _FAILED,
    _HANDLED,
    _PUBLISHED,
    _RETRIED,
    _SENT,
    HarnessCore,
    Matches,
)
from conveyor.testing.flow import Copy, Pending, ancestors, causal_parents, fold_copies
from conveyor.testing.matching import Difference, MessageMatcher, as_matcher
from conveyor.testing.query import ExceptionSpec, Query
from conveyor.testing.report import (
    Candidate,
    FlowAssertionError,
    explain,
    format_duration,
    format_offset,
)
from conveyor.testing.transcript import transcript

__all__ = ["Harness"]

_K = RecordKind
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
_BUS = frozenset({_K.SENT, _K.PUBLISHED, _K.ASKED})
_BAD_STATES = ("dead_lettered", "raised", "discarded", "expired", "error_handled", "rejected")


class Harness(HarnessCore):
    """A ``Messaging`` under test, with ``assert_*`` methods next to its verbs.

    Build one around any ``Messaging`` (``Harness(Messaging(...))``), or let the pytest plugin's
    ``messaging`` fixture build it. Everything a ``Messaging`` has is reachable through it.
    """

    # ------------------------------------------------------------------ bus messages

    def assert_sent(
        self,
        message: MessageMatcher = None,
        *,
        headers: Mapping[str, str] | None = None,
        times: int | None = None,
    ) -> Matches:
        """A command matching ``message`` was sent (``times`` times, if given)."""
        __tracebackhide__ = True
        return self._expect(self.query("sent", _SENT, message, headers=headers), times)

    def assert_not_sent(
        self, message: MessageMatcher = None, *, headers: Mapping[str, str] | None = None
    ) -> None:
        """No command matching ``message`` was sent (no argument: no command at all)."""
        __tracebackhide__ = True
        self._refuse(self.query("sent", _SENT, message, headers=headers))

    def assert_published(
        self,
        message: MessageMatcher = None,
        *,
        headers: Mapping[str, str] | None = None,
        times: int | None = None,
    ) -> Matches:
        """An event matching ``message`` was published (``times`` times, if given)."""
        __tracebackhide__ = True
        return self._expect(self.query("published", _PUBLISHED, message, headers=headers), times)

    def assert_not_published(
        self, message: MessageMatcher = None, *, headers: Mapping[str, str] | None = None
    ) -> None:
        """No event matching ``message`` was published (no argument: no event at all)."""
        __tracebackhide__ = True
        self._refuse(self.query("published", _PUBLISHED, message, headers=headers))

    def assert_asked(
        self,
        message: MessageMatcher = None,
        *,
        headers: Mapping[str, str] | None = None,
        times: int | None = None,
    ) -> Matches:
        """A query matching ``message`` was asked."""
        __tracebackhide__ = True
        return self._expect(self.query("asked", _ASKED, message, headers=headers), times)

    def assert_not_asked(
        self, message: MessageMatcher = None, *, headers: Mapping[str, str] | None = None
    ) -> None:
        __tracebackhide__ = True
        self._refuse(self.query("asked", _ASKED, message, headers=headers))

    # ------------------------------------------------------------------ handling

    def assert_handled(
        self,
        *what: object,
        by: object = None,
        headers: Mapping[str, str] | None = None,
        times: int | None = None,
    ) -> Matches:
        """A handler returned for a message: ``assert_handled(OrderPlaced, by=email_customer)``.

        The handler may also come first: ``assert_handled(email_customer, OrderPlaced)``, or
        alone: ``assert_handled(email_customer)``.
        """
        __tracebackhide__ = True
        message, by = self._handled_args(what, by)
        return self._expect(self.query("handled", _HANDLED, message, by=by, headers=headers), times)

    def assert_not_handled(
        self, *what: object, by: object = None, headers: Mapping[str, str] | None = None
    ) -> None:
        """No handler (or not ``by``) returned for a message matching ``message``."""
        __tracebackhide__ = True
        message, by = self._handled_args(what, by)
        self._refuse(self.query("handled", _HANDLED, message, by=by, headers=headers))

    def assert_failed(
        self,
        message: MessageMatcher = None,
        *,
        by: object = None,
        exception: ExceptionSpec | None = None,
        match: str | None = None,
        attempt: int | None = None,
        times: int | None = None,
    ) -> Matches:
        """A handling attempt raised (``times`` counts attempts, instant retries included)."""
        __tracebackhide__ = True
        return self._expect(
            self.query(
                "failed", _FAILED, message, by=by, exception=exception, match=match, attempt=attempt
            ),
            times,
        )

    def assert_not_failed(
        self,
        message: MessageMatcher = None,
        *,
        by: object = None,
        exception: ExceptionSpec | None = None,
    ) -> None:
        """No handling attempt for ``message`` raised (no argument: none at all)."""
        __tracebackhide__ = True
        self._refuse(self.query("failed", _FAILED, message, by=by, exception=exception))

    def assert_retried(
        self,
        message: MessageMatcher = None,
        *,
        by: object = None,
        delays: Sequence[timedelta] | None = None,
        times: int | None = None,
        exception: ExceptionSpec | None = None,
    ) -> Matches:
        """A copy of ``message`` was retried after a delay, with exactly these ``delays``.

        ``times`` is the number of delayed retries of one copy; ``delays`` lists them in
        order. Instant retries have no delay and are not counted here (see ``assert_failed``).
        """
        __tracebackhide__ = True
        extra = []
        if times is not None:
            extra.append(f"{times} time{'s' if times != 1 else ''}")
        if delays is not None:
            extra.append(f"with delays {_delays(delays)}")
        query = self.query(
            "retried", _RETRIED, message, by=by, exception=exception, extra=tuple(extra)
        )
        found = self.select(query)
        copies: dict[tuple[str, str | None], list[Record]] = {}
        for record in found:
            copies.setdefault((record.message_id, record.endpoint_id), []).append(record)
        good = [
            r
            for records in copies.values()
            if _retries_match(records, delays, times)
            for r in records
        ]
        if good:
            return Matches(good, lambda n: self.explain_count(query, good, exactly=1))
        if not copies:
            raise FlowAssertionError(self._explain_missing(query))
        candidates = [
            Candidate(records[-1], tuple(_retry_differences(records, delays, times)))
            for records in copies.values()
        ]
        raise FlowAssertionError(
            explain(
                self.snapshot(),
                self._headline(query),
                candidates=candidates,
                candidates_title="Retried copies",
            )
        )

    def assert_not_retried(self, message: MessageMatcher = None, *, by: object = None) -> None:
        __tracebackhide__ = True
        self._refuse(self.query("retried", _RETRIED, message, by=by))

    def assert_expired(
        self, message: MessageMatcher = None, *, by: object = None, times: int | None = None
    ) -> Matches:
        """A copy of ``message`` expired (its time to live ran out) before it was handled."""
        __tracebackhide__ = True
        return self._expect(self.query("expired", _EXPIRED, message, by=by), times)

    def assert_not_expired(self, message: MessageMatcher = None, *, by: object = None) -> None:
        __tracebackhide__ = True
        self._refuse(self.query("expired", _EXPIRED, message, by=by))

    def assert_dead_lettered(
        self,
        message: MessageMatcher = None,
        *,
        by: object = None,
        exception: ExceptionSpec | None = None,
        match: str | None = None,
        attempts: int | None = None,
        times: int | None = None,
    ) -> Matches:
        """A copy of ``message`` went to the dead-letter store (after ``attempts`` deliveries)."""
        __tracebackhide__ = True
        return self._expect(
            self.query(
                "dead-lettered",
                _DEAD,
                message,
                by=by,
                exception=exception,
                match=match,
                attempt=attempts,
                attempt_label="attempts",
            ),
            times,
        )

    def assert_not_dead_lettered(
        self, message: MessageMatcher = None, *, by: object = None
    ) -> None:
        """No copy of ``message`` was dead-lettered (no argument: none at all)."""
        __tracebackhide__ = True
        self._refuse(self.query("dead-lettered", _DEAD, message, by=by))

    # ------------------------------------------------------------------ pending (no settling)

    def assert_pending(
        self,
        message: MessageMatcher = None,
        *,
        by: object = None,
        channel: str | None = None,
        due_in: timedelta | None = None,
        due_at: datetime | None = None,
        times: int | None = None,
    ) -> list[Pending]:
        """A message waits on a channel (due ``due_in`` from now, or ``due_at``). No settling."""
        __tracebackhide__ = True
        now = self.clock.now()
        found = [
            p
            for p in self.pending(message, by=by, channel=channel)
            if (due_in is None or p.due == now + due_in) and (due_at is None or p.due == due_at)
        ]
        if found and (times is None or len(found) == times):
            return found
        filters = "".join(
            [
                f" by {self.endpoint_of(by)}" if by is not None else "",
                f" on {channel}" if channel else "",
                f" due in {format_duration(due_in)}" if due_in is not None else "",
                f" due at {format_offset(due_at, self.origin)}" if due_at is not None else "",
                f" {times} time{'s' if times != 1 else ''}" if times is not None else "",
            ]
        )
        what = as_matcher(message).describe()
        headline = (
            f"{what} is pending{filters} {len(found)} times, not {times}."
            if found
            else f"No {what} is pending{filters}."
        )
        raise FlowAssertionError(explain(self.snapshot(), headline))

    def assert_nothing_pending(self) -> None:
        """No message waits on any channel (scheduled endpoints do not count). No settling."""
        __tracebackhide__ = True
        found = self.pending()
        if found:
            first = found[0]
            more = f" and {len(found) - 1} more" if len(found) > 1 else ""
            raise FlowAssertionError(
                explain(
                    self.snapshot(),
                    f"Expected nothing pending, but {first.message_type}"
                    f" {first.message_id} waits on {first.channel}"
                    f"{more}.",
                )
            )

    # ------------------------------------------------------------------ order and causation

    def assert_in_order(self, *messages: MessageMatcher) -> list[Record]:
        """Messages matching these were sent, published or asked in this order (gaps allowed)."""
        __tracebackhide__ = True
        self.settle()
        records = [r for r in self.journal.records if r.kind in _BUS]
        matchers = [as_matcher(m) for m in messages]
        found: list[Record] = []
        position = 0
        for matcher in matchers:
            hit = next(
                (
                    i
                    for i in range(position, len(records))
                    if matcher.matches(records[i].payload, records[i].message_type)
                ),
                None,
            )
            if hit is None:
                after = f" after #{found[-1].seq}" if found else ""
                order = [f"#{r.seq} {r.message_type} {r.message_id}" for r in found]
                raise FlowAssertionError(
                    explain(
                        self.snapshot(),
                        f"{matcher.describe()} was not sent, published or asked{after}.",
                        sections=[("Matched in order so far", order or ["nothing"])],
                    )
                )
            found.append(records[hit])
            position = hit + 1
        return found

    def assert_caused_by(
        self, message: MessageMatcher, cause: MessageMatcher, *, direct: bool = False
    ) -> Record:
        """A message matching ``message`` descends from one matching ``cause``.

        ``direct=True`` asks for the immediate cause (the message being handled when it was
        sent); otherwise any ancestor counts.
        """
        __tracebackhide__ = True
        self.settle()
        records = self.journal.records
        parents = causal_parents(records)
        first: dict[str, Record] = {}
        for record in records:
            if record.kind in _BUS:
                first.setdefault(record.message_id, record)
        child, parent = as_matcher(message), as_matcher(cause)
        children = [r for r in first.values() if child.matches(r.payload, r.message_type)]
        for record in children:
            chain = ancestors(record.message_id, parents)
            for ancestor in chain[:1] if direct else chain:
                origin = first.get(ancestor)
                if origin is not None and parent.matches(origin.payload, origin.message_type):
                    return record
        how = "directly caused" if direct else "caused"
        note = "" if children else f" (no {child.describe()} was sent, published or asked)"
        raise FlowAssertionError(
            explain(
                self.snapshot(),
                f"{child.describe()} was not {how} by {parent.describe()}{note}.",
                offenders=children,
            )
        )

    # ------------------------------------------------------------------ transcripts

    def transcript(self, *, payloads: bool = True) -> str:
        """The flow so far as stable text, one line per journal record (no settling)."""
        return transcript(self.journal.records, self.origin, payloads=payloads)

    # ------------------------------------------------------------------ explaining

    def _expect(self, query: Query, times: int | None) -> Matches:
        __tracebackhide__ = True
        found = self.select(query)
        if found and (times is None or len(found) == times):
            return Matches(found, lambda n: self.explain_count(query, found, exactly=1))
        if not found:
            raise FlowAssertionError(self._explain_missing(query, times))
        raise FlowAssertionError(self.explain_count(query, found, exactly=times or 0))

    def _refuse(self, query: Query) -> None:
        __tracebackhide__ = True
        found = self.select(query)
        if found:
            times = f"{len(found)} time{'s' if len(found) != 1 else ''}"
            raise FlowAssertionError(
                explain(
                    self.snapshot(),
                    f"{query.matcher.describe()} {_DID[query.verb]}{query.filters()} ({times}), "
                    f"but should not have been.",
                    offenders=found,
                )
            )

    def explain_count(self, query: Query, found: list[Record], *, exactly: int) -> str:
        if not found:
            return self._explain_missing(query, exactly)
        what = f"{query.matcher.describe()} {_DID[query.verb]}{query.filters()}"
        wanted = "once" if exactly == 1 else f"{exactly} times"
        return explain(
            self.snapshot(), f"{what} {len(found)} times, not {wanted}.", offenders=found
        )

    def _explain_missing(self, query: Query, times: int | None = None) -> str:
        pool = [r for r in self.journal.records if r.kind in query.kinds]
        scored = sorted(
            ((query.differences(r), r) for r in pool), key=lambda p: (len(p[0]), p[1].seq)
        )
        same_type = [(d, r) for d, r in scored if not any(x.path == "type" for x in d)]
        causes = self._causes(query)
        # Records of other types would only distract from a probable cause.
        shown = (same_type or scored) if same_type or not causes else []
        return explain(
            self.snapshot(),
            self._headline(query, nothing=not pool),
            candidates=[Candidate(r, tuple(d)) for d, r in shown],
            candidates_title=f"Nearest candidates ({len(pool)} {query.verb} in all)",
            cause=causes,
        )

    def _headline(self, query: Query, *, nothing: bool = False) -> str:
        note = f" (nothing was {query.verb})" if nothing else ""
        return f"{query.matcher.describe()} {_NOT[query.verb]}{query.filters()}{note}."

    def _causes(self, query: Query) -> list[str]:
        copies = fold_copies(self.journal.records).values()
        bad = [c for c in copies if c.state in _BAD_STATES]
        if query.kinds == _HANDLED:
            bad = [
                c
                for c in bad
                if query.matcher.matches(c.payload, c.message_type)
                and (query.endpoint is None or c.endpoint_id == query.endpoint)
            ]
        return [_fate(c) for c in bad[:3]]

    def _handled_args(self, what: tuple[object, ...], by: object) -> tuple[object, object]:
        if len(what) > 2:
            raise TypeError(
                f"assert_handled takes a message and a handler, got {len(what)} "
                f"positional arguments"
            )
        if len(what) == 2:
            if by is not None:
                raise TypeError(
                    "assert_handled(handler, message) names the handler already; drop by=..."
                )
            return what[1], what[0]
        if len(what) == 1 and by is None and self.is_handler(what[0]):
            return None, what[0]
        return (what[0] if what else None), by


def _delays(delays: Sequence[object]) -> str:
    return (
        "["
        + ", ".join(format_duration(d) if isinstance(d, timedelta) else str(d) for d in delays)
        + "]"
    )


def _retries_match(
    records: list[Record], delays: Sequence[timedelta] | None, times: int | None
) -> bool:
    actual = [r.delay for r in records]
    return (delays is None or actual == list(delays)) and (times is None or len(actual) == times)


def _retry_differences(
    records: list[Record], delays: Sequence[timedelta] | None, times: int | None
) -> list[Difference]:
    actual = [r.delay for r in records]
    found = []
    if times is not None and len(actual) != times:
        found.append(Difference("retries", str(times), str(len(actual))))
    if delays is not None and actual != list(delays):
        found.append(Difference("delays", _delays(delays), _delays(actual)))
    return found


def _fate(copy: Copy) -> str:
    last = next((r for r in reversed(copy.records) if r.exception is not None), copy.last)
    error = f": {last.exception}" if last.exception is not None else ""
    name = f"{copy.message_type} {copy.message_id} -> {copy.endpoint_id}"
    if copy.state == "dead_lettered":
        attempts = next(
            r.attempt for r in reversed(copy.records) if r.kind is RecordKind.DEAD_LETTERED
        )
        return (
            f"{name} was dead-lettered after {attempts} attempt{'s' if attempts != 1 else ''}"
            f"{error}"
        )
    if copy.state == "raised":
        return f"{name} raised to its caller{error}"
    if copy.state == "error_handled":
        return f"{name} failed and went to its error handler{error}"
    return f"{name} was {copy.state.replace('_', ' ')}{error}"
