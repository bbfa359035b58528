"""The tree shows the layers, and the import graph keeps them (DESIGN section 2).

Read with ``ast``, without importing anything: the pure core imports no driver, transport,
store, testing or CLI module; only the composition roots (``conveyor.drivers.messaging`` and
``conveyor.drivers.async_messaging``) build the parts, so no other kernel module imports
``Messaging`` or ``AsyncMessaging``; and no module reaches into another
object's private members.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

KERNEL = Path(__file__).resolve().parents[1] / "kernel" / "src" / "conveyor"
ROOT_MODULES = ("conveyor.drivers.messaging", "conveyor.drivers.async_messaging")
# Clients of the composition root, as user code is: they build or drive a Messaging.
CLIENTS = ("conveyor", "conveyor.testing", "conveyor.cli")


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(KERNEL.rglob("*.py")):
        parts = path.relative_to(KERNEL.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, ast.parse(path.read_text(), str(path))


def imports(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "conveyor"


def test_the_kernel_is_laid_out_in_layers() -> None:
    layers = {layer(name) for name, _ in modules()}
    assert {"core", "drivers", "transports", "stores", "testing", "cli"} <= layers


@pytest.mark.parametrize(("name", "tree"), [pytest.param(n, t, id=n) for n, t in modules()])
def test_the_core_imports_nothing_outside_the_core(name: str, tree: ast.Module) -> None:
    if layer(name) != "core":
        return
    outside = {
        imported
        for imported in imports(tree)
        if imported.startswith("conveyor.") and layer(imported) != "core"
    }
    assert outside == set(), f"{name} (pure core) imports {sorted(outside)}"


@pytest.mark.parametrize(("name", "tree"), [pytest.param(n, t, id=n) for n, t in modules()])
def test_only_the_composition_root_and_its_clients_import_messaging(
    name: str, tree: ast.Module
) -> None:
    if name in ROOT_MODULES or name in CLIENTS or name.startswith(CLIENTS[1:]):
        return
    reaching = {
        imported
        for imported in imports(tree)
        if imported in ROOT_MODULES
        or imported.startswith(tuple(f"{root}." for root in ROOT_MODULES))
        or imported in ("conveyor.Messaging", "conveyor.AsyncMessaging")
    }
    assert reaching == set(), f"{name} imports the composition root: {sorted(reaching)}"


_NAMEDTUPLE_API = {"_asdict", "_replace", "_fields", "_make"}


def own_private_names(tree: ast.Module) -> set[str]:
    """Private members the module's own classes define (slots, ``self._x = ...``)."""
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "self" and isinstance(node.ctx, ast.Store):
                own.add(node.attr)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets
        ):
            own.update(
                c.value
                for c in ast.walk(node.value)
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            )
    return own


def foreign_modules(tree: ast.Module) -> set[str]:
    """Names bound to modules from outside Conveyor (``argparse._SubParsersAction`` is theirs)."""
    return {
        (alias.asname or alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if not alias.name.startswith("conveyor")
    }


def private_reaches(tree: ast.Module) -> list[str]:
    """``other._member`` where ``other`` is not ``self``/``cls`` and the member is not one the
    module's own classes define (dunders and the namedtuple API are public)."""
    allowed = own_private_names(tree) | _NAMEDTUPLE_API
    outside = foreign_modules(tree)
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and node.attr not in allowed
            and not (
                isinstance(node.value, ast.Name) and node.value.id in ("self", "cls", *outside)
            )
        ):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize(("name", "tree"), [pytest.param(n, t, id=n) for n, t in modules()])
def test_no_kernel_module_touches_another_objects_private_members(
    name: str, tree: ast.Module
) -> None:
    assert private_reaches(tree) == [], name


def test_the_architecture_checks_can_fail() -> None:
    reaching = ast.parse("def f(m):\n    return m._record\n")
    assert private_reaches(reaching) == ["line 2: m._record"]
    core_module = ast.parse("from conveyor.drivers.messaging import Messaging\n")
    assert "conveyor.drivers.messaging" in imports(core_module)
