"""``databus simulate``: a reproducible synthetic province, to files or onto the bus."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from databus import metrics
from databus.cli.options import metrics_host_option
from databus.client.publisher import Publisher
from databus.settings import Settings
from databus.sim import (
    Province,
    PublishedSimulation,
    Rates,
    SimulationConfig,
    SimulationSummary,
    publish_province,
    write_ndjson,
)
from databus.wire import Rejection

#: How many rejections are echoed (there should be none: the simulator writes valid records).
SHOWN_REJECTIONS = 10


def _rate_overrides(values: tuple[str, ...]) -> dict[str, str]:
    overrides = {}
    for value in values:
        name, sep, number = value.partition("=")
        if not sep:
            raise click.BadParameter(f"expected NAME=VALUE, got {value!r}", param_hint="--rate")
        overrides[name.strip()] = number.strip()
    return overrides


def _progress(label: str, console: Console, enabled: bool) -> Progress:
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not enabled,
    )


def _summary_table(summary: SimulationSummary, published: PublishedSimulation | None) -> Table:
    table = Table(
        title=f"simulated province (seed {summary.seed}, from {summary.start}, {summary.days} days)"
    )
    table.add_column("what")
    table.add_column("count", justify="right")
    if published is not None:
        table.add_column("published", justify="right")
    for label, count in summary.rows():
        row = [label, str(count)]
        if published is not None:
            accepted = published.accepted.get(label)
            row.append("" if accepted is None else str(accepted))
        table.add_row(*row)
    return table


async def _publish(
    settings: Settings, province: Province, *, ticks: bool, bar: Progress
) -> PublishedSimulation:
    task = bar.add_task("records", total=province.summary().total)
    shown = 0

    def rejected(rejection: Rejection) -> None:
        nonlocal shown
        if shown < SHOWN_REJECTIONS:
            click.echo(f"rejected {rejection.summary()}", err=True)
            shown += 1

    async with Publisher(settings) as publisher:
        return await publish_province(
            province,
            publisher,
            ticks=ticks,
            on_records=lambda count: bar.advance(task, count),
            on_rejection=rejected,
        )


@click.command()
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of every random draw.")
@click.option(
    "--residents",
    type=click.IntRange(min=1),
    default=20_000,
    show_default=True,
    help="Residents registered in the province.",
)
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=400,
    show_default=True,
    help="Days to simulate.",
)
@click.option(
    "--start",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default="2025-01-01",
    show_default=True,
    help="The first simulated day.",
)
@click.option(
    "--rate",
    "rates",
    multiple=True,
    metavar="NAME=VALUE",
    help="Change a rate of databus.sim.Rates (repeatable), e.g. flights_per_year=0.3.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write one NDJSON file per dataset (DATASET.ndjson) into this directory.",
)
@click.option("--publish", "to_bus", is_flag=True, help="Publish to the bus, day by day.")
@click.option(
    "--ticks", is_flag=True, help="With --publish: a clock tick for each day after its records."
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@click.option(
    "--metrics-port", type=int, help="Serve Prometheus metrics on this port while publishing."
)
@metrics_host_option
@click.pass_obj
def simulate(
    settings: Settings,
    *,
    seed: int,
    residents: int,
    days: int,
    start: dt.datetime,
    rates: tuple[str, ...],
    out: Path | None,
    to_bus: bool,
    ticks: bool,
    progress: bool,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Simulate a province (residents, pensions, deaths, moves, visits, trips) and write
    its agency records to --out, publish them with --publish, or both. The same seed and
    options always give the same records. Exits 1 when a record was rejected."""
    if out is None and not to_bus:
        raise click.UsageError("say where the records go: --out DIR and/or --publish")
    if ticks and not to_bus:
        raise click.UsageError("--ticks needs --publish")
    if metrics_port is not None:
        metrics.serve(metrics_port, metrics_host)
    config = SimulationConfig(
        seed=seed,
        residents=residents,
        start=start.date(),
        days=days,
        rates=Rates().replaced(_rate_overrides(rates)),
    )
    began = time.perf_counter()
    province = Province(config)
    summary = province.summary()
    console = Console(stderr=True)
    console.print(
        f"generated {summary.total} records for {residents} residents over {days} days "
        f"in {time.perf_counter() - began:.1f} s"
    )
    if out is not None:
        with _progress(f"writing {out}", console, progress) as bar:
            task = bar.add_task("records", total=summary.total)
            bar.advance(task, summary.roster_records)
            write_ndjson(province, out, on_day=lambda day: bar.advance(task, len(day.records)))
        console.print(f"wrote {summary.total} records to {out}/<dataset>.ndjson")
    published = None
    if to_bus:
        began = time.perf_counter()
        with _progress("publishing", console, progress) as bar:
            published = asyncio.run(_publish(settings, province, ticks=ticks, bar=bar))
        ticked = f", ticked {published.days_ticked} days" if ticks else ""
        console.print(
            f"published {published.accepted.total()} records in "
            f"{time.perf_counter() - began:.1f} s, rejected "
            f"{published.rejected.total()}{ticked}"
        )
    Console().print(_summary_table(summary, published))
    if published is not None and published.rejected.total():
        click.echo("rejected records went to dlq.rejected.v1", err=True)
        sys.exit(1)
