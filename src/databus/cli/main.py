"""Entry point that assembles the command groups of each area."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click
from aiokafka.errors import KafkaConnectionError
from pydantic import ValidationError

from databus.cli.acl import acl
from databus.cli.audit import audit
from databus.cli.broker import broker
from databus.cli.catalog import catalog
from databus.cli.demo import demo as demo_command
from databus.cli.explain import explain_command
from databus.cli.grants import grants
from databus.cli.publish import publish
from databus.cli.schemas import schemas
from databus.cli.share import share
from databus.cli.simulate import simulate
from databus.cli.subscribe import subscribe
from databus.cli.topics import topics
from databus.cli.worker import clock, worker
from databus.errors import DatabusError
from databus.settings import Settings


class _DatabusGroup(click.Group):
    """Turns every :class:`DatabusError` into a one-line message and exit code 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except DatabusError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except KafkaConnectionError as exc:
            settings = ctx.obj if isinstance(ctx.obj, Settings) else None
            where = settings.bootstrap_servers if settings else "the configured brokers"
            click.echo(
                f"error: cannot reach Kafka at {where} ({exc}); start the local broker with "
                "`databus broker start` or set DATABUS_BOOTSTRAP_SERVERS",
                err=True,
            )
            sys.exit(2)


@click.group(cls=_DatabusGroup)
@click.option(
    "--bootstrap-servers", metavar="HOST:PORT", help="Kafka brokers (DATABUS_BOOTSTRAP_SERVERS)."
)
@click.option(
    "--demo",
    is_flag=True,
    help="Ask for the public demo pseudonym key (DATABUS_DEMO); publishing then works only "
    "against a demo broker, and not with DATABUS_PSEUDONYM_KEY set.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, bootstrap_servers: str | None, demo: bool, verbose: int) -> None:
    """databus: an event-driven data-sharing bus between government agencies."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides: dict[str, Any] = {}
    if bootstrap_servers:
        overrides["bootstrap_servers"] = bootstrap_servers
    if demo:
        overrides["demo"] = True
    try:
        ctx.obj = Settings(**overrides)
    except ValidationError as invalid:
        raise click.UsageError(f"invalid settings: {_one_line(invalid)}") from None


def _one_line(invalid: ValidationError) -> str:
    """Every problem of the settings in one line, without the values (secrets)."""
    return "; ".join(
        f"{'.'.join(map(str, error['loc'])) or 'settings'}: {error['msg']}"
        for error in invalid.errors(include_url=False, include_input=False)
    )


for command in (broker, catalog, topics, publish, subscribe, worker, clock, explain_command):
    main.add_command(command)
main.add_command(schemas)
main.add_command(simulate)
main.add_command(demo_command)
main.add_command(grants)
main.add_command(share)
main.add_command(audit)
main.add_command(acl)
