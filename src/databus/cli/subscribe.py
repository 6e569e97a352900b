"""``databus subscribe DATASET``: print a dataset's events, one JSON object per line."""

from __future__ import annotations

import asyncio

import click
import orjson

from databus.catalog import CATALOG
from databus.client.subscriber import Subscriber
from databus.errors import DecodeError
from databus.governance.views import configured_catalog
from databus.settings import Settings


def _report(error: DecodeError) -> None:
    click.echo(f"skipped: {error}", err=True)


async def _subscribe(
    settings: Settings,
    *,
    datasets: tuple[str, ...],
    group: str | None,
    from_beginning: bool,
    limit: int | None,
    idle_timeout: float | None,
) -> int:
    printed = 0
    # Share topics (share.<consumer>.<dataset>) are datasets made by the grants.
    known = all(name in CATALOG for name in datasets)
    async with Subscriber(
        list(datasets),
        settings,
        group=group,
        from_beginning=from_beginning,
        catalog=CATALOG if known else configured_catalog(settings),
        on_decode_error=_report,
    ) as subscriber:
        async for event in subscriber.events(limit=limit, idle_timeout=idle_timeout):
            click.echo(orjson.dumps(event.to_json_dict()).decode())
            printed += 1
    return printed


@click.command()
@click.argument("datasets", nargs=-1, required=True)
@click.option("--from-beginning", is_flag=True, help="Start at the oldest retained event.")
@click.option("--group", help="Consumer group: join it and commit progress.")
@click.option("--max", "limit", type=click.IntRange(min=1), help="Stop after N events.")
@click.option(
    "--idle-timeout",
    type=click.FloatRange(min=0),
    help="Stop when no event has arrived for this many seconds.",
)
@click.pass_obj
def subscribe(
    settings: Settings,
    *,
    datasets: tuple[str, ...],
    from_beginning: bool,
    group: str | None,
    limit: int | None,
    idle_timeout: float | None,
) -> None:
    """Print the events of DATASETS as JSON lines (CloudEvents attributes + data); a
    DATASET may be a share topic, share.<consumer>.<dataset>."""
    printed = asyncio.run(
        _subscribe(
            settings,
            datasets=datasets,
            group=group,
            from_beginning=from_beginning,
            limit=limit,
            idle_timeout=idle_timeout,
        )
    )
    click.echo(f"{printed} events", err=True)
