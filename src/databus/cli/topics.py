"""``databus topics``: create and align the catalog's topics on the broker."""

from __future__ import annotations

import asyncio

import click

from databus.ops.topics import apply_topics
from databus.settings import Settings


@click.group()
def topics() -> None:
    """Kafka topics of the catalog."""


@topics.command("apply")
@click.pass_obj
def apply(settings: Settings) -> None:
    """Create missing topics and align their configs (idempotent)."""
    changes = asyncio.run(apply_topics(settings))
    for change in changes:
        detail = f" ({change.detail})" if change.detail else ""
        click.echo(
            f"{change.topic:34} {change.action:16} {change.partitions:>3} partitions{detail}"
        )
    created = sum(change.action == "created" for change in changes)
    click.echo(f"{len(changes)} topics on {settings.bootstrap_servers}, {created} created")
