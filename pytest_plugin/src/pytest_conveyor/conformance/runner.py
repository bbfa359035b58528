"""Run the checks without pytest: each against a fresh harness, every result collected.

The same function is the sync runner and the async runner: give it a factory of
:class:`~pytest_conveyor.conformance.harness.TransportHarness` or of
:class:`~pytest_conveyor.conformance.async_harness.AsyncTransportHarness`. A script, a notebook
or another test framework can run the suite this way::

    report = run_checks(lambda: TransportHarness(MyTransport(clock), clock))
    assert report.ok, report
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from pytest_conveyor.conformance.checks import CHECKS
from pytest_conveyor.conformance.harness import Harness, NotApplicable
from pytest_conveyor.conformance.registry import Check

__all__ = ["Outcome", "Report", "run_check", "run_checks"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one check said about one transport."""

    check: str
    verdict: Literal["passed", "failed", "not applicable"]
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Report:
    """Every outcome of one run, in check order."""

    outcomes: tuple[Outcome, ...]

    def named(self, verdict: str) -> set[str]:
        return {o.check for o in self.outcomes if o.verdict == verdict}

    @property
    def failed(self) -> set[str]:
        return self.named("failed")

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        lines = [f"{o.verdict:>14}  {o.check}  {o.detail}".rstrip() for o in self.outcomes]
        return "\n".join(lines)


def run_check(check: Check, harness: Harness) -> Outcome:
    """Run one check on ``harness`` (closed afterwards, whatever happened)."""
    with harness:
        try:
            check(harness)
        except NotApplicable as reason:
            return Outcome(check.name, "not applicable", str(reason))
        except AssertionError as error:
            return Outcome(check.name, "failed", str(error))
        except Exception as error:
            return Outcome(check.name, "failed", f"{type(error).__name__}: {error}")
    return Outcome(check.name, "passed")


def run_checks(make_harness: Callable[[], Harness], checks: Iterable[Check] = CHECKS) -> Report:
    """Run each check against a fresh harness from ``make_harness``."""
    return Report(tuple(run_check(check, make_harness()) for check in checks))
