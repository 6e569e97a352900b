"""``databus share worker``: run the projection of every grant into its share topic."""

from __future__ import annotations

import asyncio
import signal

import click
from aiokafka.errors import KafkaError

from databus import metrics
from databus.cli.options import metrics_host_option
from databus.errors import ConfigurationError, DatabusError
from databus.governance.grant_files import display
from databus.governance.share_worker import run_share_worker
from databus.governance.views import grants_path
from databus.governance.watch import GrantsWatcher
from databus.rules import load_policy
from databus.settings import Settings


@click.group()
def share() -> None:
    """Per-consumer views of the datasets, as the grants allow, with an audit trail."""


@share.command("worker")
@click.option("--metrics-port", type=int, help="Serve Prometheus /metrics on this port.")
@click.option(
    "--session-timeout",
    type=click.FloatRange(min=6),
    default=30.0,
    show_default=True,
    help="Seconds before the group gives a silent (crashed) worker's partitions to others.",
)
@metrics_host_option
@click.pass_obj
def worker(
    settings: Settings, *, metrics_port: int | None, metrics_host: str, session_timeout: float
) -> None:
    """Share each record under every active grant, exactly once, with its audit record
    (start several to spread the partitions); grant file changes apply within seconds."""
    path = grants_path(settings)
    if path is None:
        raise ConfigurationError(
            "no grant files: set DATABUS_GRANTS (a checkout has deploy/grants)"
        )
    watcher = GrantsWatcher(path)
    time_zone = load_policy(settings.policy_file).time_zone
    if metrics_port is not None:
        metrics.serve(metrics_port, metrics_host)
    click.echo(
        f"share worker: {len(watcher.grants)} grants from {display(path)}, "
        f"Kafka {settings.bootstrap_servers} as {settings.principal()}",
        err=True,
    )
    try:
        asyncio.run(_run(settings, watcher, time_zone, session_timeout))
    except KafkaError as failed:  # e.g. a missing ACL while taking over partitions
        raise DatabusError(f"the share worker stopped: {failed!r}") from failed


async def _run(
    settings: Settings, watcher: GrantsWatcher, time_zone: str, session_timeout: float
) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await run_share_worker(
        settings,
        watcher,
        time_zone=time_zone,
        session_timeout_s=session_timeout,
        stopping=stopping,
    )
