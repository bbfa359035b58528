"""The documentation and the packaging a newcomer meets first stay true (issue 20).

``.ci/run`` builds the site with ``mkdocs build --strict``; these checks run with the suite.
"""

from __future__ import annotations

import re
import runpy
import tomllib
from pathlib import Path

import pytest

import conveyor.testing

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DISTRIBUTIONS = [
    ROOT / "kernel",
    ROOT / "pytest_plugin",
    *sorted(p for p in (ROOT / "adapters").iterdir() if (p / "pyproject.toml").exists()),
]


def test_conveyor_testing_exports_exactly_the_names_the_testing_guide_documents() -> None:
    guide = (DOCS / "testing.md").read_text()
    section = guide.split("## Public names of `conveyor.testing`", 1)[1]
    documented = set(re.findall(r"^- `(\w+)`:", section, flags=re.MULTILINE))
    assert documented == set(conveyor.testing.__all__)


@pytest.mark.parametrize("snippet", sorted((DOCS / "snippets").glob("*.py")), ids=lambda p: p.name)
def test_the_docs_examples_run(snippet: Path) -> None:
    runpy.run_path(str(snippet), run_name="docs_example")


def test_every_nav_page_exists() -> None:
    nav = re.findall(r":\s*([\w/.-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.MULTILINE)
    assert len(nav) >= 10
    assert [page for page in nav if not (DOCS / page).exists()] == []


@pytest.mark.parametrize("where", DISTRIBUTIONS, ids=lambda p: p.name)
def test_every_distribution_carries_the_license(where: Path) -> None:
    assert (where / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()
    assert "MIT License" in (ROOT / "LICENSE").read_text()


@pytest.mark.parametrize("name", ["kernel", "pytest_plugin", "adapters/sqlite"])
def test_the_distributions_a_newcomer_installs_first_have_a_readme(name: str) -> None:
    project = tomllib.loads((ROOT / name / "pyproject.toml").read_text())["project"]
    readme = ROOT / name / project["readme"]
    assert len(readme.read_text().splitlines()) >= 10


def test_time_machine_is_an_extra_of_the_kernel() -> None:
    project = tomllib.loads((ROOT / "kernel" / "pyproject.toml").read_text())["project"]
    assert any(
        d.startswith("time-machine") for d in project["optional-dependencies"]["time-machine"]
    )
