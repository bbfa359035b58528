"""Assertions about outcomes: what was sent, published, asked, handled, failed, retried, ...

Each positive assertion has a negative twin (``assert_published``, ``assert_not_published``) and
runs the query of the same name (``published()``), so it settles first and both answers are
exact and instant. A positive assertion returns its ``Matches`` (``times`` pins how many); a
failed one raises :class:`~conveyor.testing.report.FlowAssertionError` whose text names the
nearest candidates and a probable cause (``explanations``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, overload

from conveyor.core.journal import Record
from conveyor.testing.core import HarnessCore
from conveyor.testing.explanations import (
    format_delays,
    missing,
    retry_differences,
    unwanted,
    wrong_retries,
)
from conveyor.testing.formatting import plural
from conveyor.testing.matching import MessageMatcher
from conveyor.testing.query import ExceptionSpec, Query
from conveyor.testing.querying import (
    _ASKED,
    _DEAD,
    _EXPIRED,
    _FAILED,
    _HANDLED,
    _PUBLISHED,
    _RETRIED,
    _SENT,
    M,
    Matches,
)
from conveyor.testing.report import FlowAssertionError

__all__ = ["OutcomeAssertions"]


class OutcomeAssertions(HarnessCore):
    """The ``assert_*`` and ``assert_not_*`` methods about what happened to messages."""

    # ------------------------------------------------------------------ bus messages

    @overload
    def assert_sent(
        self,
        message: type[M],
        *,
        headers: Mapping[str, str] | None = None,
        times: int | None = None,
    ) -> Matches[M]: ...
    @overload
    def assert_sent(
        self,
        message: MessageMatcher = None,
        *,
        headers: Mapping[str, str] | None = None,
        times: int | None = None,
    ) -> Matches[Any]: ...
    def assert_sent(
        self,
        message: MessageMatcher = None,
        *,
        headers: Mapping[str, str] | None = None,
        times: int | None = None,
    ) -> Matches[Any]:
        """A command matching ``message`` was sent (``times`` times, if given)."""
        __tracebackhide__ = True
        return self._expect(self.query("sent", _SENT, message, headers=headers), times)

    def assert_not_sent(
        self, message: MessageMatcher = None, *, headers: Mapping[str, str] | None = None
    ) -> None:
        """No command matching ``message`` was sent (no argument: no command at all)."""
        __tracebackhide__ = True
        self._refuse(self.query("sent", _SENT, message, headers=headers))

    @overload
    def assert_published(
        self,
        message: type[M],
        *,
        headers: Mapping[str, str] | None = None,
        times: int | None = None,
    ) -> Matches[M]: ...
    @overload
    def assert_published(
        self,
        message: MessageMatcher = None,
        *,
        headers: Mapping[str, str] | None = None,
        times: int | None = None,
    ) -> Matches[Any]: ...
    def assert_published(
        self,
        message: MessageMatcher = None,
        *,
        headers: Mapping[str, str] | None = None,
        times: int | None = None,
    ) -> Matches[Any]:
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
        message: type[M] | MessageMatcher = None,
        *,
        headers: Mapping[str, str] | None = None,
        times: int | None = None,
    ) -> Matches[M]:
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
        message: type[M] | MessageMatcher = None,
        *,
        by: object = None,
        exception: ExceptionSpec | None = None,
        match: str | None = None,
        attempt: int | None = None,
        times: int | None = None,
    ) -> Matches[M]:
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
        message: type[M] | MessageMatcher = None,
        *,
        by: object = None,
        delays: Sequence[timedelta] | None = None,
        times: int | None = None,
        exception: ExceptionSpec | None = None,
    ) -> Matches[M]:
        """A copy of ``message`` was retried after a delay, with exactly these ``delays``.

        ``times`` is the number of delayed retries of one copy; ``delays`` lists them in
        order. Instant retries have no delay and are not counted here (see ``assert_failed``).
        """
        __tracebackhide__ = True
        extra = []
        if times is not None:
            extra.append(plural(times, "time"))
        if delays is not None:
            extra.append(f"with delays {format_delays(delays)}")
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
            if not retry_differences(records, delays, times)
            for r in records
        ]
        if good:
            return self._matched(query, good)
        if not copies:
            raise FlowAssertionError(missing(self.snapshot(), query))
        raise FlowAssertionError(
            wrong_retries(self.snapshot(), query, copies.values(), delays, times)
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
        message: type[M] | MessageMatcher = None,
        *,
        by: object = None,
        exception: ExceptionSpec | None = None,
        match: str | None = None,
        attempts: int | None = None,
        times: int | None = None,
    ) -> Matches[M]:
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

    # ------------------------------------------------------------------ the two shapes

    def _expect(self, query: Query, times: int | None) -> Matches[Any]:
        __tracebackhide__ = True
        found = self.select(query)
        if found and (times is None or len(found) == times):
            return self._matched(query, found)
        raise FlowAssertionError(self.explain_count(query, found, exactly=times or 0))

    def _refuse(self, query: Query) -> None:
        __tracebackhide__ = True
        found = self.select(query)
        if found:
            raise FlowAssertionError(unwanted(self.snapshot(), query, found))

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
