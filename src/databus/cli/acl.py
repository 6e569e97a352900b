"""``databus acl``: broker users and ACLs derived from the catalog and the grants."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import click
import orjson

from databus.catalog import CATALOG
from databus.cli.grants import province_today
from databus.governance.access import Principal, audit_floor, derive_access
from databus.governance.grant_files import display
from databus.governance.strimzi import render_users
from databus.governance.views import catalog_with_views, configured_grants
from databus.ops.acls import apply_access
from databus.ops.topics import DEFAULT_REPLICATION, render_strimzi
from databus.settings import Settings

USERS_FILE = "kafka-users.yaml"
_FLOOR_WHY = "nobody but a super user deletes, alters or reconfigures the audit topics"
TOPICS_FILE = "kafka-topics.yaml"


def _principals(settings: Settings, today: dt.date) -> list[Principal]:
    return derive_access(configured_grants(settings), today=today)


@click.group()
def acl() -> None:
    """Who may do what on the broker: derived, applied, rendered for Strimzi."""


@acl.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_obj
def show(settings: Settings, as_json: bool) -> None:
    """Print the derived users and their ACLs (grants active today)."""
    principals = _principals(settings, province_today(settings))
    if as_json:
        shown = [
            {
                "user": p.name,
                "role": p.role,
                "why": p.why,
                "acls": [str(a).split(" ", 1)[1] for a in p.acls],
            }
            for p in principals
        ]
        floor = [str(rule) for rule in audit_floor()]
        shown.append({"user": "*", "role": "floor", "why": _FLOOR_WHY, "acls": floor})
        click.echo(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())
        return
    for principal in principals:
        click.echo(f"{principal.name} ({principal.role}): {principal.why}")
        for rule in principal.acls:
            click.echo(f"    {str(rule).split(' ', 1)[1]}")
    click.echo(f"everyone (the audit floor): {_FLOOR_WHY}")
    for rule in audit_floor():
        click.echo(f"    {rule}")


@acl.command("apply")
@click.option(
    "--credentials-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where new users' credentials are written, one <user>.env each [<state dir>/credentials].",
)
@click.option("--rotate", multiple=True, metavar="USER", help="Give USER a new password.")
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@click.pass_obj
def apply(
    settings: Settings, *, credentials_dir: Path | None, rotate: tuple[str, ...], dry_run: bool
) -> None:
    """Create missing users, add missing ACLs, remove every other ACL on databus's
    resources (run as a super user; recorded in audit.operations.v1 first)."""
    grants = configured_grants(settings)
    principals = derive_access(grants, today=province_today(settings))
    directory = credentials_dir or settings.state_dir / "credentials"
    changes = asyncio.run(
        apply_access(
            settings,
            principals,
            managed_topics=[d.topic for d in catalog_with_views(grants, CATALOG)],
            credentials_dir=directory,
            rotate=rotate,
            dry_run=dry_run,
        )
    )
    verb = "would " if dry_run else ""
    added, removed = ("to add", "to remove") if dry_run else ("added", "removed")
    for name in changes.users_created:
        click.echo(f"{verb}create user {name}")
    for name in changes.passwords_rotated:
        click.echo(f"{verb}give {name} a new password")
    for rule in changes.added:
        click.echo(f"{verb}add    {rule}")
    for rule in changes.removed:
        click.echo(f"{verb}remove {rule}")
    for path in changes.credential_files:
        click.echo(f"credentials: {display(path)}")
    if changes.other_users:
        click.echo(f"left alone (not databus users): {', '.join(changes.other_users)}")
    click.echo(
        f"{len(principals)} users; ACLs: {len(changes.added)} {added}, "
        f"{len(changes.removed)} {removed}, {changes.unchanged} unchanged"
        + ("; nothing changed (dry run)" if dry_run else "; recorded in audit.operations.v1")
    )


@acl.command("render")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["strimzi"]),
    default="strimzi",
    show_default=True,
    help="strimzi: one KafkaUser per user (and, with --output-dir, the KafkaTopics).",
)
@click.option("--cluster", default="databus", show_default=True, help="The Strimzi Kafka.")
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Grants active on this day count (default: today in the province).",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Write {USERS_FILE} and {TOPICS_FILE} here (e.g. deploy/k8s) instead of printing "
    "the users.",
)
@click.option("--partitions", type=click.IntRange(min=1), help="For the KafkaTopics.")
@click.option("--replication-factor", type=click.IntRange(min=1), help="For the KafkaTopics.")
@click.pass_obj
def render(
    settings: Settings,
    *,
    output_format: str,
    cluster: str,
    as_of: dt.datetime | None,
    output_dir: Path | None,
    partitions: int | None,
    replication_factor: int | None,
) -> None:
    """Render the users (and topics) as Kubernetes resources (no broker needed)."""
    del output_format  # strimzi is the only format so far
    day = as_of.date() if as_of else province_today(settings)
    grants = configured_grants(settings)
    command = f"databus acl render --format strimzi --cluster {cluster} --as-of {day}"
    users = render_users(derive_access(grants, today=day), cluster=cluster, command=command)
    if output_dir is None:
        click.echo(users, nl=False)
        return
    topics = render_strimzi(
        cluster=cluster,
        partitions=partitions or settings.partitions,
        replication_factor=(
            replication_factor or settings.replication_factor or DEFAULT_REPLICATION
        ),
        catalog=catalog_with_views(grants, CATALOG),
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, text in ((USERS_FILE, users), (TOPICS_FILE, topics)):
        (output_dir / name).write_text(text, encoding="utf-8")
        click.echo(f"wrote {display(output_dir / name)}")
