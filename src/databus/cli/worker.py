"""``databus worker`` and ``databus clock tick``: run the decision engine, move time."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import click

from databus.metrics import DEFAULT_HOST
from databus.rules import load_policy
from databus.settings import Settings
from databus.streams.clock import local_today, publish_ticks


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where this worker keeps its RocksDB tables (default: under the state dir).",
)
@click.option(
    "--web-port", type=int, help="Serve /metrics, /livez and /readyz on this port (only those)."
)
@click.option(
    "--web-host",
    default=DEFAULT_HOST,
    show_default=True,
    metavar="ADDRESS",
    help="Address the web port listens on; 0.0.0.0 for every interface (a pod, a container).",
)
@click.option("--daily-ticks", is_flag=True, help="Leader publishes a clock tick each new day.")
@click.option("--memory-store", is_flag=True, help="Keep tables in memory (tests, demos).")
@click.option(
    "--session-timeout",
    type=click.FloatRange(min=6),
    default=60.0,
    show_default=True,
    help="Seconds before the group gives a silent (crashed) worker's partitions to others.",
)
@click.pass_obj
def worker(
    settings: Settings,
    *,
    data_dir: Path | None,
    web_port: int | None,
    web_host: str,
    daily_ticks: bool,
    memory_store: bool,
    session_timeout: float,
) -> None:
    """Run a decision worker (start several to spread the partitions)."""
    # Faust is imported only by the commands that run it: it is slow to load.
    from databus.streams.app import EngineOptions  # noqa: PLC0415
    from databus.streams.table import STORE_SCHEME  # noqa: PLC0415
    from databus.streams.worker import run_worker  # noqa: PLC0415

    datadir = data_dir or settings.state_dir / "worker"
    datadir.parent.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    options = EngineOptions(
        store="memory://" if memory_store else f"{STORE_SCHEME}://",
        datadir=datadir,
        web_port=web_port,
        web_host=web_host,
        session_timeout_s=session_timeout,
    )
    run_worker(settings, load_policy(settings.policy_file), options, daily_ticks=daily_ticks)


@click.group()
def clock() -> None:
    """The bus clock: decisions learn that a day has passed from ticks."""


@clock.command("tick")
@click.option(
    "--date",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The day that has begun (default: today in the policy's time zone).",
)
@click.pass_obj
def tick(settings: Settings, as_of: dt.datetime | None) -> None:
    """Publish one tick to every partition of system.clock.v1."""
    policy = load_policy(settings.policy_file)
    day = as_of.date() if as_of else local_today(policy.time_zone)
    count = asyncio.run(publish_ticks(settings, day))
    click.echo(f"ticked {day} on {count} partitions")
