"""``databus broker start | stop | status``: the local Kafka broker from the shell.

Progress goes to stderr; ``start`` prints only the bootstrap address on stdout, so
``BOOTSTRAP=$(databus broker start)`` works in scripts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from databus.ops.broker import BrokerStatus, LocalBroker
from databus.ops.broker_config import min_insync_replicas
from databus.ops.cluster import LocalCluster, cluster_nodes_on_disk
from databus.ops.kafka_dist import KAFKA_VERSION, cached_kafka_libs
from databus.settings import Settings

#: Exit code of ``status`` when no broker runs (as in LSB init scripts).
EXIT_NOT_RUNNING = 3

_Command = TypeVar("_Command", bound=Callable[..., object])


_STATE_DIR_OPTION = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory holding broker/ (data, config, pid file, log) [settings].",
)


def _port_options(command: _Command) -> _Command:
    """Ports matter only to ``start``: ``status`` reads them from the running config."""
    command = click.option(
        "--controller-port", type=int, default=None, help="KRaft controller port [settings]."
    )(command)
    return click.option("--port", type=int, default=None, help="Client port [settings].")(command)


def _local_broker(
    port: int | None,
    controller_port: int | None,
    state_dir: Path | None,
    *,
    secure: bool = False,
    demo: bool = False,
) -> LocalBroker:
    settings = _settings()
    return LocalBroker.from_settings(
        settings,
        state_dir=state_dir,
        port=port,
        controller_port=controller_port,
        secure=secure,
        demo=demo,
    )


def _settings() -> Settings:
    """The CLI's settings, or the environment's when called outside ``databus``."""
    obj = click.get_current_context().find_object(Settings)
    return obj if obj is not None else Settings()


def _state_dir(state_dir: Path | None) -> Path:
    return state_dir if state_dir is not None else _settings().state_dir


@click.group()
def broker() -> None:
    """A real Apache Kafka (KRaft) on this machine, one broker or a cluster, for development."""


@broker.command()
@_port_options
@_STATE_DIR_OPTION
@click.option(
    "--secure",
    is_flag=True,
    help="TLS (SASL_SSL) and SASL/SCRAM for every client, ACLs enforced; the CA clients "
    "trust and the super user's settings are written under <state dir>/broker/.",
)
@click.option(
    "--demo",
    is_flag=True,
    help="Format a new data directory as a demo broker, the only kind where the public "
    "demo key works (synthetic data only); a demo broker starts only with --demo.",
)
@click.option(
    "--nodes",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Brokers to run as one KRaft cluster (each also a controller), on successive "
    "port pairs; with 3 or more, topics get 3 replicas and min.insync.replicas=2.",
)
def start(
    *,
    port: int | None,
    controller_port: int | None,
    state_dir: Path | None,
    secure: bool,
    demo: bool,
    nodes: int,
) -> None:
    """Start the broker unless it runs already; print its bootstrap address."""
    if nodes > 1:
        _start_cluster(nodes, port, controller_port, state_dir, secure=secure, demo=demo)
        return
    local = _local_broker(port, controller_port, state_dir, secure=secure, demo=demo)
    local.refuse_other_kind()  # before any progress line: the error is all that is said
    current = local.status()
    if not current.running:
        if current.stale_pid is not None:
            click.echo(f"removing stale pid file {local.pid_path}", err=True)
        if cached_kafka_libs(local.cache_dir) is None:
            click.echo(
                f"fetching Kafka {KAFKA_VERSION} jars with Maven into "
                f"{local.cache_dir} (first run only)",
                err=True,
            )
        click.echo(f"starting Kafka {KAFKA_VERSION}, log: {local.log_path}", err=True)
    bootstrap = local.start()  # a running broker of another mode or port is refused here
    if current.running:
        click.echo(f"Kafka already running (pid {current.pid})", err=True)
    else:
        click.echo(f"Kafka running (pid {local.status().pid})", err=True)
    if secure:
        click.echo(
            f"TLS and SASL/SCRAM required, ACLs enforced; clients trust {local.ca_path}; "
            f"the super user's settings: . {local.admin_env_path}",
            err=True,
        )
    if demo:
        click.echo("a demo broker: synthetic data and the public demo key only", err=True)
    click.echo(bootstrap)


def _local_cluster(
    nodes: int,
    port: int | None,
    controller_port: int | None,
    state_dir: Path | None,
    *,
    demo: bool = False,
) -> LocalCluster:
    settings = _settings()
    return LocalCluster(
        state_dir if state_dir is not None else settings.state_dir,
        settings.cache_dir,
        nodes,
        port if port is not None else settings.broker_port,
        controller_port if controller_port is not None else settings.controller_port,
        demo=demo,
    )


def _start_cluster(
    nodes: int,
    port: int | None,
    controller_port: int | None,
    state_dir: Path | None,
    *,
    secure: bool,
    demo: bool,
) -> None:
    if secure:
        raise click.UsageError(
            "--secure runs a single broker for now; a local cluster is plaintext"
        )
    cluster = _local_cluster(nodes, port, controller_port, state_dir, demo=demo)
    before = cluster.status()
    if len(before.running) < nodes:
        click.echo(
            f"starting a cluster of {nodes} Kafka {KAFKA_VERSION} brokers, logs: "
            f"{cluster.cluster_dir}/node-*/broker.log",
            err=True,
        )
    bootstrap = cluster.start()
    pids = ", ".join(str(node.pid) for node in cluster.status().nodes)
    click.echo(
        f"Kafka cluster running (pids {pids}); topics get {cluster.replication} replicas, "
        f"min.insync.replicas={min_insync_replicas(cluster.replication)}",
        err=True,
    )
    click.echo(bootstrap)


@broker.command()
@_STATE_DIR_OPTION
def stop(state_dir: Path | None) -> None:
    """Stop the broker (or the cluster's brokers) this state directory started, and
    nothing else."""
    on_disk = cluster_nodes_on_disk(_state_dir(state_dir))
    if on_disk:
        stopped = _local_cluster(on_disk, None, None, state_dir).stop()
        click.echo(f"Kafka cluster: {stopped} of {on_disk} brokers stopped")
    local = _local_broker(None, None, state_dir)
    before = local.status()
    if local.stop():
        click.echo(f"Kafka stopped (pid {before.pid})")
    elif before.stale_pid is not None:
        click.echo(
            f"Kafka not running; removed stale pid file {local.pid_path} "
            f"(pid {before.stale_pid} is not our broker)"
        )
    elif not on_disk:
        click.echo("Kafka not running")


@broker.command()
@_STATE_DIR_OPTION
@click.pass_context
def status(ctx: click.Context, state_dir: Path | None) -> None:
    """Say whether the broker runs; exit code 0 if it does, 3 if not."""
    on_disk = cluster_nodes_on_disk(_state_dir(state_dir))
    if on_disk:
        cluster = _local_cluster(on_disk, None, None, state_dir).status()
        for number, node in enumerate(cluster.nodes, start=1):
            shown = f"pid {node.pid}, {node.bootstrap}" if node.running else "not running"
            click.echo(f"cluster node {number}: {shown}")
        if cluster.running:
            return
    local = _local_broker(None, None, state_dir)
    current = local.status()
    if not current.running:
        stale = (
            f" (stale pid file {local.pid_path}: pid {current.stale_pid} is not our broker)"
            if current.stale_pid is not None
            else ""
        )
        click.echo(f"Kafka not running{stale}")
        ctx.exit(EXIT_NOT_RUNNING)
    readiness = "" if current.ready else ", not accepting connections yet"
    click.echo(
        f"Kafka running (pid {current.pid}{readiness}, {_describe(current)}), "
        f"bootstrap {current.bootstrap}"
    )


def _describe(status: BrokerStatus) -> str:
    if status.secure and status.tls:
        return "secure: TLS, SASL/SCRAM and ACLs"
    if status.secure:
        return "secure without TLS: started by an older databus, restart it"
    return "demo, plaintext" if status.demo else "plaintext"
