"""Testing message flows without pytest: a harness, matchers, transcripts, failure plans.

``Harness`` wraps a ``Messaging`` and adds exact settling and ``assert_*`` methods whose
failures explain themselves (candidates with a field diff, the timeline, pending timers, each
failed attempt). The pytest plugin (``pytest-conveyor``) builds one per test; everything here
also works in a plain script, a notebook or another test runner.
"""

from __future__ import annotations

from conveyor.testing.faults import ALWAYS, FailurePlan, PlannedFailure
from conveyor.testing.flow import Copy, Pending, fold_copies
from conveyor.testing.harness import Harness
from conveyor.testing.matching import ANY, Difference, Matcher, as_matcher, where
from conveyor.testing.querying import Matches
from conveyor.testing.report import FlowAssertionError
from conveyor.testing.services import Services
from conveyor.testing.setup import DEFAULT_START, Setup, Strictness
from conveyor.testing.strict import strict_report
from conveyor.testing.transcript import assert_deterministic, transcript

__all__ = [
    # the harness and how to build it
    "Harness",
    "Setup",
    "Strictness",
    "Services",
    "DEFAULT_START",
    # matching and results
    "where",
    "ANY",
    "Matcher",
    "as_matcher",
    "Difference",
    "Matches",
    "Pending",
    "Copy",
    "fold_copies",
    "FlowAssertionError",
    # teardown, transcripts, failure plans
    "strict_report",
    "transcript",
    "assert_deterministic",
    "FailurePlan",
    "PlannedFailure",
    "ALWAYS",
]
