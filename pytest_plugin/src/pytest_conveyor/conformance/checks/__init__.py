"""Every check of the suite, grouped by concern, in the order the suite runs them."""

from __future__ import annotations

from pytest_conveyor.conformance.checks.batches import BATCHES
from pytest_conveyor.conformance.checks.channels import CHANNELS
from pytest_conveyor.conformance.checks.delays import DELAYS
from pytest_conveyor.conformance.checks.expiry import EXPIRY
from pytest_conveyor.conformance.checks.inspection import INSPECTION
from pytest_conveyor.conformance.checks.leases import LEASES
from pytest_conveyor.conformance.checks.renewal import RENEWAL
from pytest_conveyor.conformance.checks.round_trip import ROUND_TRIP
from pytest_conveyor.conformance.registry import Check

__all__ = ["CHECKS", "GROUPS", "check_named"]

GROUPS = (ROUND_TRIP, LEASES, DELAYS, EXPIRY, BATCHES, RENEWAL, CHANNELS, INSPECTION)

CHECKS: tuple[Check, ...] = tuple(check for group in GROUPS for check in group.checks)
"""Every check, each named once (test ids are ``test_conformance[<name>]``)."""

_BY_NAME = {check.name: check for check in CHECKS}
assert len(_BY_NAME) == len(CHECKS), "two checks share a name"


def check_named(name: str) -> Check:
    """The check called ``name``; KeyError naming the known ones otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no conformance check {name!r}; known: {', '.join(_BY_NAME)}") from None
