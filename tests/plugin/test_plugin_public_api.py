"""The public names users import: each listed in ``__all__`` exists, and nothing is left out."""

from __future__ import annotations

import importlib

import pytest

MODULES = {
    "conveyor.testing": {
        "Harness",
        "AsyncHarness",
        "Setup",
        "Strictness",
        "Services",
        "where",
        "ANY",
        "Matcher",
        "Matches",
        "Pending",
        "FlowAssertionError",
        "strict_report",
        "transcript",
        "assert_deterministic",
        "FailurePlan",
        "PlannedFailure",
        "ALWAYS",
    },
    "pytest_conveyor.hypothesis": {"messages", "failure_plans", "MessageFlowMachine"},
}


@pytest.mark.parametrize("name", list(MODULES))
def test_all_lists_exactly_the_public_names(name: str) -> None:
    module = importlib.import_module(name)

    assert set(module.__all__) == MODULES[name]
    assert all(hasattr(module, public) for public in module.__all__)


def test_the_harness_has_every_assertion_the_readme_documents() -> None:
    from conveyor.testing import Harness

    documented = {
        "assert_sent",
        "assert_not_sent",
        "assert_published",
        "assert_not_published",
        "assert_asked",
        "assert_not_asked",
        "assert_handled",
        "assert_not_handled",
        "assert_failed",
        "assert_not_failed",
        "assert_retried",
        "assert_not_retried",
        "assert_expired",
        "assert_not_expired",
        "assert_dead_lettered",
        "assert_not_dead_lettered",
        "assert_pending",
        "assert_nothing_pending",
        "assert_in_order",
        "assert_caused_by",
    }

    assert documented == {name for name in dir(Harness) if name.startswith("assert_")}


def test_importing_the_plugin_does_not_import_hypothesis() -> None:
    import subprocess
    import sys

    code = "import sys, pytest_conveyor.plugin; print('hypothesis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "False"
