"""``databus demo``: the main job — a synthetic province through the bus into decisions."""

from __future__ import annotations

import datetime as dt
import sys

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from databus.demo import Demo, DemoOptions, DemoSummary, format_decisions, stop
from databus.settings import Settings


@click.command("demo")
@click.option("--seed", type=int, default=7, show_default=True, help="Simulation seed.")
@click.option("--residents", type=click.IntRange(min=1), default=20_000, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=400, show_default=True)
@click.option(
    "--start",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default="2025-01-01",
    show_default=True,
    help="First simulated day.",
)
@click.option(
    "--web-port", type=int, default=6066, show_default=True, help="The worker's /metrics port."
)
@click.option("--keep-running", is_flag=True, help="Leave the broker and the worker up afterwards.")
@click.option("--stop", "stop_only", is_flag=True, help="Stop a demo left running, and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_obj
def demo(
    settings: Settings,
    *,
    seed: int,
    residents: int,
    days: int,
    start: dt.datetime,
    web_port: int,
    keep_running: bool,
    stop_only: bool,
    as_json: bool,
) -> None:
    """Simulate a province (default 20,000 residents over 400 days) on a broker of its own:
    publish it day by day with clock ticks, run a decision worker, and summarise what it
    decided, from the worker's Prometheus metrics. Synthetic data and the public demo key
    only."""
    if stop_only:
        click.echo("demo stopped" if stop(settings) else "no demo was running")
        return
    console = Console(stderr=True)
    options = DemoOptions(
        seed=seed, residents=residents, days=days, start=start.date(), web_port=web_port,
        keep_running=keep_running,
    )  # fmt: skip
    progress = Progress(
        TextColumn("publishing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json or not console.is_terminal,
    )
    task = progress.add_task("records", total=None)

    def on_progress(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    def on_step(text: str) -> None:
        if not as_json:
            progress.console.print(f"[bold]·[/bold] {text}")

    with progress:
        summary = Demo(settings, options, on_progress=on_progress, on_step=on_step).run()
    if as_json:
        sys.stdout.write(orjson.dumps(summary.to_dict()).decode() + "\n")
        return
    Console().print(_table(summary))
    if keep_running:
        click.echo(
            f"Still running: Kafka on {summary.bootstrap}, the worker's metrics on "
            f"{summary.metrics_url}. Stop both with: databus demo --stop"
        )
    else:
        click.echo("Broker and worker stopped (use --keep-running to leave them up).")


def _table(summary: DemoSummary) -> Table:
    table = Table(
        title=f"databus demo: {summary.residents:,} residents, {summary.days} days",
        show_lines=False,
    )
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("records published (accepted)", f"{summary.published:,}")
    table.add_row("rejected inputs: by the publisher", f"{summary.rejected_by_publisher:,}")
    table.add_row("rejected inputs: dead-lettered by the worker", f"{summary.dead_letters:,}")
    table.add_row("clock ticks (one per day and partition)", f"{summary.ticks:,}")
    table.add_row("input events handled by the worker", f"{summary.events_in:,}")
    table.add_section()
    for dataset, kind, count in format_decisions(summary):
        table.add_row(f"{dataset.removeprefix('derived.')}: {kind}", f"{count:,}")
    table.add_section()
    table.add_row(
        "events/s (first publish → worker caught up)",
        f"{summary.events_per_second:,.0f} ({summary.seconds:.1f} s)",
    )
    table.add_row("metrics (Prometheus text)", summary.metrics_url)
    return table
