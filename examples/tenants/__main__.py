"""Run the tenants demo: ``python -m examples.tenants``.

A noisy tenant queues twelve reports, then a quiet tenant queues three and a tenant nobody
mapped queues one, all on SQLite channels in ``var/tenants.db``. One consumer of "reports" then
handles them through the round robin, and the demo prints the order: the quiet tenant's reports
come second, fourth and sixth, not after the noisy tenant's twelve.

With ``--queue-only`` it queues the reports and stops, so the CLI can show and consume them:

    .venv/bin/conveyor list --app examples.tenants.app:create_messaging
    .venv/bin/conveyor run reports --limit 4 --app examples.tenants.app:create_messaging
"""

from __future__ import annotations

import sys
from pathlib import Path

from conveyor import Messaging, RecordKind
from examples.tenants.app import DEFAULT_DATABASE, GenerateReport, create_messaging

BURSTS = [("noisy-co", 12), ("quiet-co", 3), ("newcomer-co", 1)]


def queue_reports(messaging: Messaging) -> None:
    """Each tenant's burst, one tenant after the other, as they arrive in the demo."""
    for tenant, count in BURSTS:
        for n in range(1, count + 1):
            messaging.send(GenerateReport(f"{tenant} report {n}"), headers={"tenant": tenant})


def main(argv: list[str], database: Path = DEFAULT_DATABASE) -> int:
    for suffix in ("", "-wal", "-shm"):  # a fresh file every run
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    with create_messaging(database) as messaging:
        queue_reports(messaging)
        if "--queue-only" in argv:
            print(f"queued {sum(count for _, count in BURSTS)} reports in {database}")
            return 0
        result = messaging.run("reports", finish_when_empty=True)
        print(f"handled {result.processed} reports, in this order:")
        for position, record in enumerate(messaging.journal.of_kind(RecordKind.HANDLED), 1):
            tenant = record.headers.get("tenant") if record.headers is not None else "?"
            print(f"  {position:>2}  {tenant:<12} from {record.where}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
