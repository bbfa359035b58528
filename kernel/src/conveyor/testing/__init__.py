"""Testing message flows without pytest: a harness, matchers, transcripts, failure plans.

``Harness`` wraps a ``Messaging`` and adds exact settling and ``assert_*`` methods whose
failures explain themselves (candidates with a field diff, the timeline, pending timers, each
failed attempt). The pytest plugin (``pytest-conveyor``) builds one per test; everything here
also works in a plain script, a notebook or another test runner.

``__all__`` is what users import; ``docs/testing.md`` documents each of these names, and a test
keeps the two the same. Everything else (journal folding, diffs, matcher construction) is an
implementation detail reachable through its own module.
"""

from __future__ import annotations

from conveyor.testing.async_harness import AsyncHarness
from conveyor.testing.faults import ALWAYS, FailurePlan, PlannedFailure
from conveyor.testing.flow import Pending
from conveyor.testing.harness import Harness
from conveyor.testing.matching import ANY, Matcher, where
from conveyor.testing.querying import Matches
from conveyor.testing.report import FlowAssertionError
from conveyor.testing.services import Services
from conveyor.testing.setup import Setup, Strictness
from conveyor.testing.strict import strict_report
from conveyor.testing.transcript import assert_deterministic, transcript

__all__ = [
    # the harness and how to build it
    "Harness",
    "AsyncHarness",
    "Setup",
    "Strictness",
    "Services",
    # matching and results
    "where",
    "ANY",
    "Matcher",
    "Matches",
    "Pending",
    "FlowAssertionError",
    # teardown, transcripts, failure plans
    "strict_report",
    "transcript",
    "assert_deterministic",
    "FailurePlan",
    "PlannedFailure",
    "ALWAYS",
]
