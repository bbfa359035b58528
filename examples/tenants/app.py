"""Per-tenant report queues behind one channel name, consumed fairly.

Every tenant's reports wait on a channel of their own, in one SQLite file; the handler is
asynchronous on one name, "reports", a dynamic channel. Its sending strategy reads the message's
``tenant`` header to pick the tenant's channel (a tenant nobody mapped goes to "reports.shared");
its receiving strategy polls the tenants' channels round robin. So when a noisy tenant queues a
hundred reports, a quiet tenant's three are handled among the first few, not after the hundred.

``create_messaging`` is the factory the CLI uses:
``conveyor list --app examples.tenants.app:create_messaging`` shows the dynamic channel with each
tenant's queue, and ``conveyor run reports --app ...`` consumes them through the round robin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conveyor import (
    Channel,
    Clock,
    Context,
    DynamicChannel,
    Messaging,
    asynchronous,
    by_header,
    command_handler,
    round_robin,
)
from conveyor.core.ids import IdGenerator
from conveyor_sqlite import SqliteChannel

DEFAULT_DATABASE = Path("var") / "tenants.db"
TENANTS = {"noisy-co": "reports.noisy", "quiet-co": "reports.quiet"}


@dataclass(frozen=True)
class GenerateReport:
    """Build one report for the tenant named in the message's ``tenant`` header."""

    report: str


@dataclass
class ReportRenderer:
    """Renders reports; remembers which tenant each one was for, in order."""

    rendered: list[tuple[str, str]]

    @command_handler(endpoint_id="render_report")
    @asynchronous("reports")
    def render(self, command: GenerateReport, context: Context) -> None:
        tenant = context.headers.get("tenant")
        self.rendered.append((str(tenant), command.report))


def report_channels(make: Callable[[str], Channel]) -> DynamicChannel:
    """The dynamic channel "reports" over one channel per tenant, made by ``make``."""
    return DynamicChannel(
        "reports",
        channels=[make(name) for name in [*TENANTS.values(), "reports.shared"]],
        sending=by_header("tenant", TENANTS, default="reports.shared"),
        receiving=round_robin(),
    )


def create_messaging(
    database: Path | str = DEFAULT_DATABASE,
    *,
    renderer: ReportRenderer | None = None,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
) -> Messaging:
    """The tenants' messaging on SQLite channels in ``database`` (its directory is created)."""
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    return Messaging(
        handlers=[renderer if renderer is not None else ReportRenderer([])],
        channels=[report_channels(lambda name: SqliteChannel(name, path=database))],
        clock=clock,
        ids=ids,
    )
