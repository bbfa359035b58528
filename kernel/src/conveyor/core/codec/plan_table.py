"""Plans by class, shared safely between threads: what the encoder and decoder plans have in common.

Kernels built from the same handlers share one codec's plans (``conveyor.core.spec_cache``),
possibly from several threads. A dataclass's plan is built under a lock, together with every plan
it needs on the way, and published only once all of them are complete, so a reader that does not
take the lock never finds a plan half built. A recursive class finds its own plan while that plan
is being built.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Generic, TypeVar

__all__ = ["PlanTable"]

P = TypeVar("P")


class PlanTable(Generic[P]):
    """Plans by class, built on first use; a subclass says how to build one."""

    def __init__(self) -> None:
        self._complete: dict[type, P] = {}  # complete plans: read without the lock
        self._building: dict[type, P] = {}  # built now by the thread holding the lock
        self._lock = threading.RLock()

    def plan_of(self, cls: type) -> P | None:
        """The plan of ``cls``, built with the plans it needs on first use; None if none can be."""
        plan = self._complete.get(cls)
        if plan is not None:
            return plan
        with self._lock:
            plan = self._complete.get(cls) or self._building.get(cls)
            if plan is not None:
                return plan
            if not dataclasses.is_dataclass(cls):
                plan = self._leaf_plan(cls)
                if plan is not None:
                    self._complete[cls] = plan
                return plan
            outermost = not self._building
            try:
                return self._dataclass_plan(cls)
            finally:
                if outermost:  # every plan built on the way is complete now (or was dropped)
                    self._complete.update(self._building)
                    self._building.clear()

    def _dataclass_plan(self, cls: type) -> P:
        """Build the plan of dataclass ``cls``; put it in ``_building`` first (recursion)."""
        raise NotImplementedError

    def _leaf_plan(self, cls: type) -> P | None:
        """The plan of a class that is not a dataclass; None if there is none."""
        raise NotImplementedError
