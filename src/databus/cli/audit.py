"""``databus audit verify``: recompute the audit trail's hash chains."""

from __future__ import annotations

import asyncio

import click

from databus.catalog import AUDIT
from databus.governance.audit_log import verify_topic
from databus.settings import Settings

#: Exit code when a chain is broken (2 stays "the command could not run").
EXIT_BROKEN = 1


@click.group()
def audit() -> None:
    """The audit trail of sharing (audit.sharing.v1)."""


@audit.command("verify")
@click.option(
    "--topic",
    default=AUDIT.topic,
    show_default=True,
    help="The audit topic, or a copy of it to check.",
)
@click.pass_context
def verify(ctx: click.Context, topic: str) -> None:
    """Recompute every partition's chain; name the first broken link of each (exit 1).

    The head printed per partition is the hash of its newest record: keep them
    elsewhere, and a later verify that no longer reaches a kept head shows that
    records were deleted from the end.
    """
    settings: Settings = ctx.obj
    reports = asyncio.run(verify_topic(settings, topic))
    broken = 0
    for report in reports:
        anchored = (
            f", from offset {report.anchored_at} (older records deleted by retention)"
            if report.anchored_at is not None
            else ""
        )
        if report.broken is None:
            click.echo(
                f"partition {report.partition}: {report.records} records, intact{anchored}; "
                f"head {report.head}"
            )
        else:
            broken += 1
            click.echo(f"BROKEN {report.broken}")
            click.echo(f"    the {report.records} records before it are intact{anchored}")
    total = sum(report.records for report in reports)
    if broken:
        click.echo(f"{topic}: {broken} of {len(reports)} partitions broken", err=True)
        ctx.exit(EXIT_BROKEN)
    click.echo(f"{topic}: {total} records in {len(reports)} partitions, every chain intact")
