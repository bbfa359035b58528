"""The README's Python examples run as written, in order, in one namespace (as a reader would).

Only blocks with ``[...]`` placeholders (the broker adapters' configuration) are left out.
The Testing block's pytest tests run too: each with a harness built from its ``conveyor``
markers, as the plugin builds it. And the same blocks pass ``mypy --strict``, since a user's
type checker reads what they copy.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import sys
import types
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from mypy import api

from conveyor import Messaging
from conveyor.testing import Setup

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    return [b for b in blocks if "[...]" not in b]


def _conveyor_options(target: object) -> dict[str, Any]:
    marks = getattr(target, "pytestmark", [])
    options: dict[str, Any] = {}
    for mark in marks if isinstance(marks, list) else [marks]:
        if mark.name == "conveyor":
            options.update(mark.kwargs)
    return options


def test_the_readme_examples_run_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks()
    assert len(blocks) >= 5  # quickstart, asynchronous handlers, time, failures, testing
    module = types.ModuleType("readme")  # dataclasses look their module up in sys.modules
    monkeypatch.setitem(sys.modules, "readme", module)
    for block in blocks:
        exec(compile(block, str(README), "exec", dont_inherit=True), module.__dict__)
    assert isinstance(module.__dict__["messaging"], Messaging)
    tests: dict[str, Callable[..., Any]] = {
        name: value for name, value in module.__dict__.items() if name.startswith("test_")
    }
    assert len(tests) >= 2
    module_marks = types.SimpleNamespace(pytestmark=module.__dict__.get("pytestmark", []))
    base = Setup().replace(**_conveyor_options(module_marks))
    for test in tests.values():
        setup = base.replace(**_conveyor_options(test))
        if inspect.iscoroutinefunction(test):
            asyncio.run(_run_async(setup, test))
            continue
        with setup.harness() as harness:
            test(harness)


async def _run_async(setup: Setup, test: Callable[..., Awaitable[None]]) -> None:
    """An ``async def`` test with the harness the ``async_messaging`` fixture builds."""
    async with setup.async_harness() as harness:
        await test(harness)


def test_the_readme_examples_pass_mypy_strict(tmp_path: Path) -> None:
    source = tmp_path / "readme_examples.py"
    source.write_text("\n".join(python_blocks()))
    out, err, status = api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(source)]
    )
    assert status == 0, out + err


TYPED_QUERIES = """
from dataclasses import dataclass
from typing import Any, assert_type

from conveyor import Record
from conveyor.testing import Harness


@dataclass(frozen=True)
class Placed:
    order_id: str


def check(messaging: Harness) -> None:
    assert_type(messaging.published(Placed).one(), Record[Placed])
    assert_type(messaging.assert_sent(Placed).one().payload, Placed)
    assert_type(messaging.handled(Placed, by="x").payloads(), list[Placed])
    assert_type(messaging.dead_lettered(Placed).one().payload.order_id, str)
    assert_type(messaging.published(Placed("o-1")).one().payload, Any)  # a value: any payload
"""


def test_a_query_by_class_types_its_payloads(tmp_path: Path) -> None:
    source = tmp_path / "typed_queries.py"
    source.write_text(TYPED_QUERIES)
    out, err, status = api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(source)]
    )
    assert status == 0, out + err


TYPED_BUSES = """
from dataclasses import dataclass
from typing import Any, assert_type

from conveyor import (
    AsyncContext, AsyncMessaging, CommandBus, Context, EventBus, Messaging, Query, QueryBus,
)
from conveyor.testing import Harness


@dataclass(frozen=True)
class CountOrders(Query[int]):
    pass


@dataclass(frozen=True)
class Untyped:
    pass


def check(messaging: Messaging, harness: Harness, ctx: Context) -> None:
    queries: QueryBus = messaging
    commands: CommandBus = messaging
    events: EventBus = messaging
    for_tests: QueryBus = harness
    assert_type(messaging.ask(CountOrders()), int)
    assert_type(messaging.ask(Untyped()), Any)
    assert_type(harness.ask(CountOrders()), int)
    assert_type(ctx.ask(CountOrders()), int)
    assert_type(queries.ask(CountOrders()), int)
    assert_type(for_tests.ask(CountOrders()), int)
    assert_type(messaging.query_bus().ask(CountOrders()), int)


async def check_async(messaging: AsyncMessaging, ctx: AsyncContext) -> None:
    assert_type(await messaging.ask(CountOrders()), int)
    assert_type(await ctx.ask(CountOrders()), int)
"""


def test_ask_is_typed_by_the_query_and_messaging_is_each_bus(tmp_path: Path) -> None:
    source = tmp_path / "typed_buses.py"
    source.write_text(TYPED_BUSES)
    out, err, status = api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(source)]
    )
    assert status == 0, out + err
