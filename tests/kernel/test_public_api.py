"""The public names users and tests rely on (DESIGN section 3), checked against ``__all__``."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import conveyor

DESIGNED = {
    "Messaging",
    "command_handler",
    "event_handler",
    "query_handler",
    "asynchronous",
    "delayed",
    "priority",
    "time_to_live",
    "scheduled",
    "Context",
    "Message",
    "Headers",
    "CommandBus",
    "EventBus",
    "QueryBus",
    "QueueChannel",
    "RetryPolicy",
    "DeadLetter",
    "DeadLetterStore",
    "Clock",
    "SystemClock",
    "VirtualClock",
}


def test_every_designed_name_is_exported() -> None:
    assert set(conveyor.__all__) >= DESIGNED


def test_all_lists_only_names_that_exist_and_nothing_twice() -> None:
    assert len(conveyor.__all__) == len(set(conveyor.__all__))
    for name in conveyor.__all__:
        assert hasattr(conveyor, name), name


def test_every_public_attribute_is_curated() -> None:
    public = {n for n in vars(conveyor) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(conveyor, n)).__name__ == "module"}
    assert public - modules - {"annotations"} == set(conveyor.__all__)


def test_importing_conveyor_does_no_work_and_imports_no_optional_library() -> None:
    code = (
        "import sys, conveyor, conveyor.drivers.messaging, conveyor.core.codec.serialization;"
        "print(sorted(m for m in ('pydantic', 'msgspec', 'time_machine', 'freezegun', 'sqlite3')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_sqlite_adapter_imports_without_opening_anything() -> None:
    module = importlib.import_module("conveyor_sqlite")
    assert module.__all__


def test_the_api_reference_documents_exactly_the_public_names() -> None:
    """Issue 20: every exported name has a documented entry, and nothing else is listed.

    Exporting a new name means adding ``::: conveyor.Name`` to docs/reference/conveyor.md.
    """
    page = Path(__file__).resolve().parents[2] / "docs" / "reference" / "conveyor.md"
    documented = re.findall(r"^::: conveyor\.(\w+)$", page.read_text(), flags=re.MULTILINE)
    assert len(documented) == len(set(documented))
    assert set(documented) == set(conveyor.__all__)
