from dataclasses import dataclass

from conveyor import (
    DynamicChannel,
    Messaging,
    QueueChannel,
    RecordKind,
    VirtualClock,
    asynchronous,
    by_header,
    command_handler,
    round_robin,
)


@dataclass(frozen=True)
class GenerateReport:
    report: str


@asynchronous("reports")  # the handler sees one channel
@command_handler
def render_report(command: GenerateReport) -> None: ...


reports = DynamicChannel(
    "reports",
    channels=[
        QueueChannel("reports.noisy"),
        QueueChannel("reports.quiet"),
        QueueChannel("reports.shared"),  # or SqliteChannel, a broker's channel
    ],
    sending=by_header(
        "tenant",
        {"noisy-co": "reports.noisy", "quiet-co": "reports.quiet"},
        default="reports.shared",  # no default: an unmapped value fails at send
    ),
    receiving=round_robin(),  # or throttled(allow), or a function
)
messaging = Messaging(handlers=[render_report], channels=[reports], clock=VirtualClock())
for n in range(10):
    messaging.send(GenerateReport(f"r{n}"), headers={"tenant": "noisy-co"})
messaging.send(GenerateReport("q1"), headers={"tenant": "quiet-co"})
messaging.run("reports", limit=2)  # the quiet tenant's report is the second one handled
assert messaging.journal.of_kind(RecordKind.HANDLED)[-1].via == "reports.quiet"
