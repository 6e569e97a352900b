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
    obj = click.get_current_context().find_object(Settings)
    settings = obj if obj is not None else Settings()
    return LocalBroker.from_settings(
        settings,
        state_dir=state_dir,
        port=port,
        controller_port=controller_port,
        secure=secure,
        demo=demo,
    )


@click.group()
def broker() -> None:
    """A real single-node Apache Kafka (KRaft) on this machine, for development."""


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
def start(
    port: int | None,
    controller_port: int | None,
    state_dir: Path | None,
    secure: bool,
    demo: bool,
) -> None:
    """Start the broker unless it runs already; print its bootstrap address."""
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


@broker.command()
@_STATE_DIR_OPTION
def stop(state_dir: Path | None) -> None:
    """Stop the broker this state directory started, and nothing else."""
    local = _local_broker(None, None, state_dir)
    before = local.status()
    if local.stop():
        click.echo(f"Kafka stopped (pid {before.pid})")
    elif before.stale_pid is not None:
        click.echo(
            f"Kafka not running; removed stale pid file {local.pid_path} "
            f"(pid {before.stale_pid} is not our broker)"
        )
    else:
        click.echo("Kafka not running")


@broker.command()
@_STATE_DIR_OPTION
@click.pass_context
def status(ctx: click.Context, state_dir: Path | None) -> None:
    """Say whether the broker runs; exit code 0 if it does, 3 if not."""
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
