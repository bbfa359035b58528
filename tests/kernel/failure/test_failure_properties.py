"""Stateful property test: whatever fails, retries, expires, is redelivered or replayed, nothing is
lost, nothing ends twice, and the journal accounts for every attempt.

A random configuration (retry policies at handler, channel and Messaging level, error handlers,
dead-lettering, final failure strategies, deduplication, dead-lettering of expired messages) is
drawn first; then random sends, publishes, failure plans, clock moves, consumer runs, duplicate
deliveries and replays. After settling:

* every life of a message copy (its first delivery, each duplicate delivery, each replay) ends in
  exactly one final state: handled, skipped as a duplicate, given to the error handler,
  dead-lettered, discarded or expired; nothing is left on a channel;
* with deduplication on, no endpoint handles a message twice;
* the journal has one FAILED or HANDLED record per handler call;
* a copy with a single life ends as a model of the retry rules predicts, after the predicted
  number of calls and attempts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from failure_kit import LoggingTransport, RecordingChannel, build
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from conveyor import (
    Backoff,
    Deduplication,
    Failure,
    InMemoryDeduplicationStore,
    Messaging,
    RecordKind,
    RetryPolicy,
    asynchronous,
    command_handler,
    event_handler,
)
from conveyor.transports.channels import FinalFailure


@dataclass(frozen=True)
class Job:
    n: int


@dataclass(frozen=True)
class Happened:
    n: int


class Transient(Exception):
    """Retried by every policy in this test."""


class Ignored(Transient):
    """Matches ``on=`` but is in ``ignore=``: never retried."""


ENDPOINTS = {"work": "jobs", "notify": "events", "audit": "events"}
CHANNELS = ("jobs", "events")
TERMINAL = (
    RecordKind.HANDLED,
    RecordKind.DUPLICATE,
    RecordKind.ERROR_HANDLED,
    RecordKind.DEAD_LETTERED,
    RecordKind.DISCARDED,
    RecordKind.EXPIRED,
)

# A failure plan: fail the first k calls (0 = succeed), fail always, or raise an ignored type.
Plan = tuple[str, int]
plans = st.one_of(
    st.tuples(st.just("fail"), st.integers(0, 4)),
    st.tuples(st.just("always"), st.just(0)),
    st.tuples(st.just("ignored"), st.just(0)),
)
policies = st.one_of(
    st.none(),
    st.builds(
        RetryPolicy,
        instant=st.integers(0, 2),
        delays=st.one_of(
            st.none(),
            st.builds(Backoff.fixed, st.integers(1, 5).map(lambda n: timedelta(seconds=n))),
            st.just(
                Backoff.exponential(
                    initial=timedelta(seconds=1),
                    factor=2,
                    max_delay=timedelta(seconds=4),
                    jitter=0.5,
                )
            ),
        ),
        attempts=st.integers(1, 4),
        on=st.just((Transient,)),
        ignore=st.just((Ignored,)),
    ),
)
optional_flags = st.sampled_from([None, True, False])
finals: st.SearchStrategy[FinalFailure] = st.sampled_from(["resend", "ignore"])


@dataclass(frozen=True)
class Config:
    handler_policy: RetryPolicy | None  # on "work" and "audit"
    channel_policy: RetryPolicy | None  # on both channels
    messaging_policy: RetryPolicy | None
    error_handler: str | None  # None, "handler" (on "work"), "channel" ("jobs"), "messaging"
    handler_dead_letter: bool | None  # on "work"
    channel_dead_letter: bool | None  # on "events"
    messaging_dead_letter: bool
    final_failure: dict[str, FinalFailure]
    deduplication: bool
    dead_letter_expired: bool

    def policy(self, endpoint: str) -> RetryPolicy | None:
        own = self.handler_policy if endpoint in ("work", "audit") else None
        return own or self.channel_policy or self.messaging_policy

    def destination(self, endpoint: str) -> tuple[bool, bool]:
        """(an error handler takes it, dead-letter setting): the most specific level that says
        where a failure goes decides both (``conveyor.drivers.policies``)."""
        channel = ENDPOINTS[endpoint]
        levels = [
            (
                self.error_handler == "handler" and endpoint == "work",
                self.handler_dead_letter if endpoint == "work" else None,
            ),
            (
                self.error_handler == "channel" and channel == "jobs",
                self.channel_dead_letter if channel == "events" else None,
            ),
            (self.error_handler == "messaging", self.messaging_dead_letter),
        ]
        for index, (handler, flag) in enumerate(levels):
            if handler:
                return True, next(f for _, f in levels[index:] if f is not None)
            if flag is not None:
                return False, flag
        return False, self.messaging_dead_letter

    def has_error_handler(self, endpoint: str) -> bool:
        return self.destination(endpoint)[0]

    def dead_letter(self, endpoint: str) -> bool:
        return self.destination(endpoint)[1]

    def loops_forever_on(self, endpoint: str) -> bool:
        """Whether a message that always fails would be resent forever on this endpoint."""
        return (
            not self.has_error_handler(endpoint)
            and not self.dead_letter(endpoint)
            and self.final_failure[ENDPOINTS[endpoint]] == "resend"
        )

    def predict(self, endpoint: str, plan: Plan) -> tuple[RecordKind, int, int]:
        """The final state, the handler calls and the last attempt of a single-life copy."""
        kind, k = plan
        needed = k if kind == "fail" else None  # calls that fail before one succeeds
        retryable = kind != "ignored"
        policy = self.policy(endpoint)
        calls, attempt = 0, 1
        while True:
            tries = 1 + (policy.instant if policy is not None and retryable else 0)
            if needed is not None and needed - calls < tries:
                return RecordKind.HANDLED, needed + 1, attempt
            calls += tries
            if (
                policy is not None
                and retryable
                and policy.delays is not None
                and attempt < policy.attempts
            ):
                attempt += 1
                continue
            if self.has_error_handler(endpoint):
                return RecordKind.ERROR_HANDLED, calls, attempt
            if self.dead_letter(endpoint):
                return RecordKind.DEAD_LETTERED, calls, attempt
            if self.final_failure[ENDPOINTS[endpoint]] == "ignore":
                return RecordKind.DISCARDED, calls, attempt
            attempt += 1  # resent to the tail of its channel


configs = st.builds(
    Config,
    handler_policy=policies,
    channel_policy=policies,
    messaging_policy=policies,
    error_handler=st.sampled_from([None, "handler", "channel", "messaging"]),
    handler_dead_letter=optional_flags,
    channel_dead_letter=optional_flags,
    messaging_dead_letter=st.booleans(),
    final_failure=st.fixed_dictionaries({"jobs": finals, "events": finals}),
    deduplication=st.booleans(),
    dead_letter_expired=st.booleans(),
)
ttls = st.one_of(st.none(), st.integers(1, 10).map(lambda n: timedelta(seconds=n)))


class FailureHandling(RuleBasedStateMachine):
    """Drives one Messaging; tracks plans, handler calls and the lives of each message copy."""

    @initialize(config=configs)
    def build(self, config: Config) -> None:
        self.config = config
        self.plans: dict[tuple[int, str], Plan] = {}
        self.calls: Counter[tuple[int, str]] = Counter()
        self.ids: dict[int, str] = {}  # n -> message id
        self.lives: Counter[tuple[str, str]] = Counter()  # (message id, endpoint) -> lives
        self.failures_received = 0
        self.next_n = 0

        def behave(n: int, endpoint: str) -> None:
            self.calls[(n, endpoint)] += 1
            kind, k = self.plans[(n, endpoint)]
            if kind == "ignored":
                raise Ignored(f"{endpoint} {n}")
            if kind == "always" or self.calls[(n, endpoint)] <= k:
                raise Transient(f"{endpoint} {n} call {self.calls[(n, endpoint)]}")

        @asynchronous(
            "jobs",
            retry=config.handler_policy,
            error_handler="on_failure" if config.error_handler == "handler" else None,
            dead_letter=config.handler_dead_letter,
        )
        @command_handler(endpoint_id="work")
        def work(job: Job) -> None:
            behave(job.n, "work")

        @asynchronous("events")
        @event_handler(endpoint_id="notify")
        def notify(event: Happened) -> None:
            behave(event.n, "notify")

        @asynchronous("events", retry=config.handler_policy)
        @event_handler(endpoint_id="audit")
        def audit(event: Happened) -> None:
            behave(event.n, "audit")

        @event_handler(endpoint_id="on_failure")
        def on_failure(failure: Failure) -> None:
            self.failures_received += 1

        self.messaging: Messaging = build(
            [work, notify, audit, on_failure],
            [
                RecordingChannel(
                    "jobs",
                    retry=config.channel_policy,
                    error_handler="on_failure" if config.error_handler == "channel" else None,
                    final_failure=config.final_failure["jobs"],
                    dead_letter_expired=config.dead_letter_expired,
                ),
                RecordingChannel(
                    "events",
                    retry=config.channel_policy,
                    dead_letter=config.channel_dead_letter,
                    final_failure=config.final_failure["events"],
                    dead_letter_expired=config.dead_letter_expired,
                ),
            ],
            retry=config.messaging_policy,
            error_handler="on_failure" if config.error_handler == "messaging" else None,
            dead_letter=config.messaging_dead_letter,
            deduplication=(
                Deduplication(store=InMemoryDeduplicationStore()) if config.deduplication else None
            ),
        )

    # ------------------------------------------------------------------ producing

    def _plan(self, n: int, endpoint: str, plan: Plan) -> None:
        if plan[0] != "fail" and self.config.loops_forever_on(endpoint):
            plan = ("fail", 3)  # "always fail" would be resent forever: a runaway, not a loss
        self.plans[(n, endpoint)] = plan

    def _new_message(self) -> tuple[int, str]:
        self.next_n += 1
        return self.next_n, ""

    @rule(plan=plans, ttl=ttls)
    def send(self, plan: Plan, ttl: timedelta | None) -> None:
        n, _ = self._new_message()
        self._plan(n, "work", plan)
        self.messaging.send(Job(n), ttl=ttl)
        self._born(n, ("work",))

    @rule(notify=plans, audit=plans, ttl=ttls)
    def publish(self, notify: Plan, audit: Plan, ttl: timedelta | None) -> None:
        n, _ = self._new_message()
        self._plan(n, "notify", notify)
        self._plan(n, "audit", audit)
        self.messaging.publish(Happened(n), ttl=ttl)
        self._born(n, ("notify", "audit"))

    def _born(self, n: int, endpoints: tuple[str, ...]) -> None:
        message_id = self.messaging.journal.records[-1].message_id
        self.ids[n] = message_id
        for endpoint in endpoints:
            self.lives[(message_id, endpoint)] += 1

    # ------------------------------------------------------------------ time and consumers

    @rule(by=st.integers(0, 12))
    def move_the_clock(self, by: int) -> None:
        """Time passes with no consumer running: delays fall due, time to live runs out."""
        self.messaging.clock.advance(timedelta(seconds=by))  # type: ignore[attr-defined]

    @rule(channel=st.sampled_from(CHANNELS), limit=st.integers(1, 3))
    def run_consumer(self, channel: str, limit: int) -> None:
        self.messaging.run(channel, limit=limit)

    @rule(by=st.integers(1, 8))
    def advance(self, by: int) -> None:
        self.messaging.advance(timedelta(seconds=by))

    # ------------------------------------------------------------------ at-least-once and replay

    @rule(data=st.data())
    def deliver_again(self, data: st.DataObject) -> None:
        """The broker delivers a message it already delivered (a lost ack, a restarted relay)."""
        channel = data.draw(st.sampled_from(CHANNELS))
        transport = self.messaging.channels[channel].transport
        assert isinstance(transport, LoggingTransport)
        if not transport.sent:
            return
        wire = data.draw(st.sampled_from(transport.sent))
        transport.send(channel, wire)
        self.lives[(wire.headers["cv-id"], wire.headers["cv-endpoint"])] += 1

    @precondition(lambda self: self.messaging.dead_letters.count() > 0)
    @rule()
    def replay_all(self) -> None:
        for letter in self.messaging.dead_letters.list():
            assert letter.endpoint_id is not None
            self.lives[(letter.message_id, letter.endpoint_id)] += 1
        self.messaging.dead_letters.replay_all()

    @rule()
    def settle(self) -> None:
        self._settle_and_check()

    def teardown(self) -> None:
        if hasattr(self, "messaging"):
            self._settle_and_check()

    # ------------------------------------------------------------------ the properties

    def _settle_and_check(self) -> None:
        m = self.messaging
        m.run_until_idle(advance_time=True)
        for channel in CHANNELS:
            assert m.channels[channel].transport.pending(channel) == 0, channel  # type: ignore[attr-defined]

        ends: Counter[tuple[str, str]] = Counter()
        handled: Counter[tuple[str, str]] = Counter()
        recorded_calls: Counter[tuple[str, str]] = Counter()
        final: dict[tuple[str, str], RecordKind] = {}
        for record in m.journal:
            if record.endpoint_id not in ENDPOINTS:
                continue
            key = (record.message_id, record.endpoint_id)
            if record.kind in (RecordKind.FAILED, RecordKind.HANDLED):
                recorded_calls[key] += 1
            if record.kind == RecordKind.HANDLED:
                handled[key] += 1
            if record.kind in TERMINAL:
                if record.kind == RecordKind.DEAD_LETTERED and record.detail.startswith("expired"):
                    continue  # the EXPIRED record already ended this life
                ends[key] += 1
                final[key] = record.kind

        # every life ends exactly once: nothing lost, nothing ended twice
        assert ends == self.lives
        # the journal accounts for every attempt
        by_id = {message_id: n for n, message_id in self.ids.items()}
        assert recorded_calls == Counter(
            {(self.ids[n], endpoint): count for (n, endpoint), count in self.calls.items()}
        )
        assert self.failures_received == sum(1 for r in m.journal.of_kind(RecordKind.ERROR_HANDLED))
        for key, count in handled.items():
            if self.config.deduplication:
                assert count == 1, f"{key} handled {count} times with deduplication on"
            assert count <= self.lives[key]
        for letter in m.dead_letters.list():
            assert (letter.message_id, letter.endpoint_id) in self.lives

        # a copy with a single life ends as the model predicts
        for key, lives in self.lives.items():
            if lives != 1:
                continue
            message_id, endpoint = key
            n = by_id[message_id]
            if final[key] == RecordKind.EXPIRED:
                assert self.calls[(n, endpoint)] == 0, key  # only a first delivery expires
                continue
            kind, calls, attempt = self.config.predict(endpoint, self.plans[(n, endpoint)])
            assert (final[key], self.calls[(n, endpoint)]) == (kind, calls), (key, self.config)
            if kind == RecordKind.DEAD_LETTERED:
                [letter] = [
                    d for d in m.dead_letters.list() if (d.message_id, d.endpoint_id) == key
                ]
                assert letter.attempts == attempt


FailureHandling.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_failure_handling = FailureHandling.TestCase
