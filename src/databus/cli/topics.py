"""``databus topics``: create and align the catalog's topics, or render them as manifests."""

from __future__ import annotations

import asyncio

import click

from databus.governance.views import configured_catalog
from databus.ops.topics import DEFAULT_REPLICATION, apply_topics, render_strimzi
from databus.settings import Settings


@click.group()
def topics() -> None:
    """Kafka topics of the catalog."""


@topics.command("apply")
@click.pass_obj
def apply(settings: Settings) -> None:
    """Create missing topics and align their configs (idempotent): the catalog's, and a
    share topic for every grant (deploy/grants or DATABUS_GRANTS)."""
    changes = asyncio.run(apply_topics(settings, configured_catalog(settings)))
    for change in changes:
        detail = f" ({change.detail})" if change.detail else ""
        click.echo(
            f"{change.topic:34} {change.action:16} {change.partitions:>3} partitions{detail}"
        )
    created = sum(change.action == "created" for change in changes)
    click.echo(f"{len(changes)} topics on {settings.bootstrap_servers}, {created} created")


@topics.command("render")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["strimzi"]),
    default="strimzi",
    show_default=True,
    help="strimzi: one KafkaTopic resource per catalog topic and share topic.",
)
@click.option(
    "--cluster",
    default="databus",
    show_default=True,
    help="Name of the Strimzi Kafka resource whose topic operator manages the topics.",
)
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    help="Shared partition count of co-partitioned topics (default: DATABUS_PARTITIONS).",
)
@click.option(
    "--replication-factor",
    type=click.IntRange(min=1),
    help="Replicas of every topic (default: DATABUS_REPLICATION_FACTOR, else 3).",
)
@click.pass_obj
def render(
    settings: Settings,
    *,
    output_format: str,
    cluster: str,
    partitions: int | None,
    replication_factor: int | None,
) -> None:
    """Print the catalog's topics as Kubernetes resources (no broker needed)."""
    del output_format  # strimzi is the only format so far
    click.echo(
        render_strimzi(
            cluster=cluster,
            partitions=partitions or settings.partitions,
            replication_factor=(
                replication_factor or settings.replication_factor or DEFAULT_REPLICATION
            ),
            catalog=configured_catalog(settings),
        ),
        nl=False,
    )
