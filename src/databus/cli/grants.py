"""``databus grants``: check the grant files, list them, request a new grant."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
import orjson

from databus.catalog import CATALOG
from databus.errors import ConfigurationError, GrantError
from databus.governance.grant_files import append_entry, display, entry_text
from databus.governance.grants import GrantSet, check_entry, duplicates, load_grants
from databus.governance.views import grants_path
from databus.rules import load_policy
from databus.settings import Settings
from databus.streams.clock import local_today


def province_today(settings: Settings) -> dt.date:
    """Today in the province's time zone: grants expire at the end of their local day."""
    return local_today(load_policy(settings.policy_file).time_zone)


def _grants_path(settings: Settings) -> Path:
    path = grants_path(settings)
    if path is None:
        raise ConfigurationError(
            "no grant files: set DATABUS_GRANTS to a grant file or a directory of them "
            "(a checkout has deploy/grants)"
        )
    return path


def _load(settings: Settings) -> GrantSet:
    return load_grants(_grants_path(settings))


@click.group()
def grants() -> None:
    """Grants as code: who receives which fields of which dataset, why, until when."""


@grants.command("check")
@click.pass_obj
def check(settings: Settings) -> None:
    """Check every grant file; exit 2 naming each mistake."""
    loaded = _load(settings)
    today = province_today(settings)
    active = len(loaded.active(today))
    files = ", ".join(display(path) for path in loaded.sources) or "no files"
    click.echo(f"{len(loaded)} grants ({active} active, {len(loaded) - active} expired) in {files}")


@grants.command("list")
@click.option("--consumer", help="Only the grants to this agency.")
@click.option("--dataset", help="Only the grants of this dataset.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_obj
def list_grants(
    settings: Settings, *, consumer: str | None, dataset: str | None, as_json: bool
) -> None:
    """Who receives what and why (expired grants are shown as such)."""
    today = province_today(settings)
    shown = [
        grant.describe(today)
        for grant in _load(settings)
        if (consumer is None or grant.consumer == consumer)
        and (dataset is None or grant.dataset == dataset)
    ]
    if as_json:
        click.echo(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())
        return
    for item in shown:
        state = "" if item["state"] == "active" else " [EXPIRED]"
        click.echo(
            f"{item['consumer']} <- {item['dataset']} until {item['expires']}{state}: "
            f"{', '.join(item['fields'])}"
        )
        click.echo(f"    purpose: {item['purpose']}")
        click.echo(f"    legal basis: {item['legal_basis'] or '-'}   ({item['origin']})")


def _field_list(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


@grants.command("request")
@click.option("--consumer", required=True, help="The agency that asks for the data.")
@click.option("--dataset", required=True, help="The dataset it asks for.")
@click.option(
    "--fields",
    required=True,
    help="Comma-separated field names (person_ref always; see `databus catalog show`).",
)
@click.option("--purpose", required=True, help="What the consumer needs the data for.")
@click.option(
    "--legal-basis",
    help="The law and article relied on (required for sensitive personal information).",
)
@click.option(
    "--expires",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Last day records are shared (YYYY-MM-DD).",
)
@click.pass_obj
def request(
    settings: Settings,
    *,
    consumer: str,
    dataset: str,
    fields: str,
    purpose: str,
    legal_basis: str | None,
    expires: dt.datetime,
) -> None:
    """Write a grant request into the owner's grant file, for the owner to merge."""
    root = _grants_path(settings)
    existing = load_grants(root)
    owner = CATALOG.get(dataset).owner
    target = root / f"{owner}.yaml" if root.is_dir() else root
    field_names = _field_list(fields)
    entry = {
        "consumer": consumer,
        "dataset": dataset,
        "fields": field_names,
        "purpose": purpose,
        "legal_basis": legal_basis,
        "expires": expires.date(),
    }
    grant, problems = check_entry(
        entry, "the request", CATALOG, owner=owner if root.is_dir() else None
    )
    if grant is not None:
        problems += duplicates([*existing, grant])
    if problems:
        raise GrantError(problems)
    today = province_today(settings)
    comment = f"requested {today} by {consumer} with `databus grants request`"
    before = target.read_text(encoding="utf-8") if target.exists() else None
    append_entry(target, owner, entry_text(entry, comment=comment))
    try:
        load_grants(root)
    except GrantError:  # never leave a file behind that no longer loads
        if before is None:
            target.unlink()
        else:
            target.write_text(before, encoding="utf-8")
        raise
    name = display(target)
    click.echo(f"requested: {consumer} <- {dataset} ({', '.join(field_names)})")
    click.echo(f"written to {name}; {owner} approves it by merging it:")
    click.echo(f"  git switch -c grant/{consumer}-{dataset}")
    click.echo(f'  git commit -m "Grant request: {dataset} to {consumer}" {name}')
