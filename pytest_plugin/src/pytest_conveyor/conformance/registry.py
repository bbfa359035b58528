"""A check is a named plain function of a harness, with the declarations it needs.

A check applies unless the transport declares it cannot make the promise under test (no
priority, no delay, a lease held by a connection rather than timed, no ``renew``). It is never
left out for what a transport declares it *can* do: a transport declaring ``durable`` whose
harness cannot reopen it fails the durability checks, it does not skip them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pytest_conveyor.conformance.harness import Harness, NotApplicable

__all__ = [
    "Check",
    "Group",
    "Need",
    "declares",
    "fifo",
    "timed_lease",
    "real_time",
    "renewable",
    "inspectable",
]

Need = Callable[[Harness], str | None]
"""Why a check does not apply to a harness's transport, or None when it does."""


@dataclass(frozen=True, slots=True)
class Check:
    """One promise of the seam, checked against one harness.

    Attributes:
        name: the function's name, as test ids show it (``test_conformance[<name>]``).
        group: the concern it belongs to (send and receive, leases, ...).
        body: the check itself: raises AssertionError saying what the transport did.
        needs: the declarations without which the promise is not made.
    """

    name: str
    group: str
    body: Callable[[Harness], None]
    needs: tuple[Need, ...] = ()

    @property
    def doc(self) -> str:
        return (self.body.__doc__ or "").strip()

    def not_applicable(self, harness: Harness) -> str | None:
        """Why the harness's transport does not make this promise, or None."""
        for need in self.needs:
            reason = need(harness)
            if reason is not None:
                return reason
        return None

    def __call__(self, harness: Harness) -> None:
        """Run the check; NotApplicable when the transport declares it does not promise it."""
        reason = self.not_applicable(harness)
        if reason is not None:
            raise NotApplicable(f"{self.name}: {reason}")
        self.body(harness)


class Group:
    """The checks of one concern, in the order they are written."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.checks: list[Check] = []

    def check(self, *needs: Need) -> Callable[[Callable[[Harness], None]], Check]:
        """Register a function as a check that applies when every one of ``needs`` holds."""

        def register(body: Callable[[Harness], None]) -> Check:
            made = Check(body.__name__, self.name, body, needs)
            self.checks.append(made)
            return made

        return register


def declares(capability: str) -> Need:
    """Applies when ``capabilities.<capability>`` is truthy (``delay``, ``priority``, ...)."""

    def need(harness: Harness) -> str | None:
        value = getattr(harness.capabilities, capability)
        if value is None or value is False:
            return f"{harness.name} declares capabilities.{capability}={value!r}"
        return None

    return need


def fifo(harness: Harness) -> str | None:
    ordering = harness.capabilities.ordering
    return None if ordering == "fifo" else f"{harness.name} declares ordering={ordering!r}"


def timed_lease(harness: Harness) -> str | None:
    lease = harness.capabilities.lease
    return None if lease == "timed" else f"{harness.name} declares lease={lease!r}"


def real_time(harness: Harness) -> str | None:
    if harness.virtual:
        return (
            "virtual time: a long poll waits on real time, and the kernel never passes `wait` "
            "on a virtual clock (the real-time runner checks it)"
        )
    return None


def renewable(harness: Harness) -> str | None:
    if not harness.renewable:
        return f"{harness.name} does not implement renew (it is not a RenewableTransport)"
    return None


def inspectable(harness: Harness) -> str | None:
    if not harness.inspectable:
        return f"{harness.name} has no pending and next_due (it is not an InspectableTransport)"
    return None
