"""``databus catalog``: what datasets exist, who owns them, how they are classified, and
who receives what of them, why (the grants)."""

from __future__ import annotations

from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from databus.catalog import CATALOG
from databus.cli.grants import province_today
from databus.governance.grants import GrantSet
from databus.governance.views import configured_grants
from databus.settings import Settings


def _console() -> Console:
    """A console that does not squeeze tables to 80 columns when output is piped."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def _retention(ms: int) -> str:
    return "forever" if ms < 0 else f"{ms // 86_400_000} days"


def _described(settings: Settings, grants: GrantSet, name: str) -> dict[str, Any]:
    """A dataset's description with its grants: who receives what, why, until when."""
    today = province_today(settings)
    item = CATALOG.get(name).describe(settings.partitions)
    item["shared_with"] = [grant.describe(today) for grant in grants.for_dataset(name)]
    return item


@click.group()
def catalog() -> None:
    """Datasets on the bus: topics, owners, keys, fields and their classification."""


@catalog.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def list_datasets(settings: Settings, as_json: bool) -> None:
    """List every dataset."""
    grants = configured_grants(settings)
    described = [_described(settings, grants, d.name) for d in CATALOG]
    if as_json:
        click.echo(orjson.dumps(described, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(
        "dataset", "owner", "key", "partitions", "retention", "level", "fields", "shared with"
    )
    for item in described:
        receivers = [
            g["consumer"] + ("" if g["state"] == "active" else " (expired)")
            for g in item["shared_with"]
        ]
        table.add_row(
            item["dataset"],
            item["owner"],
            item["key"] or "-",
            str(item["partitions"]),
            _retention(item["retention_ms"]),
            item["level"],
            str(len(item["fields"])),
            ", ".join(receivers) or ("-" if item["shareable"] else "never shared"),
        )
    _console().print(table)


@catalog.command("show")
@click.argument("dataset")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def show_dataset(settings: Settings, dataset: str, as_json: bool) -> None:
    """Show one dataset with its fields, and who receives which of them, and why."""
    CATALOG.get(dataset)  # an unknown name fails before the grants are read
    item = _described(settings, configured_grants(settings), dataset)
    if as_json:
        click.echo(orjson.dumps(item, option=orjson.OPT_INDENT_2).decode())
        return
    console = _console()
    console.print(f"[bold]{item['dataset']}[/bold]  {item['description']}")
    for label in ("topic", "owner", "key", "partitions", "level", "dataschema"):
        console.print(f"  {label}: {item[label]}")
    console.print(f"  retention: {_retention(item['retention_ms'])}")
    console.print(f"  forms: input {item['input_form'] or '-'}, bus {item['bus_form']}")
    table = Table("field", "type", "required", "classification", "description")
    for field in item["fields"]:
        table.add_row(
            field["name"],
            field["type"],
            "yes" if field["required"] else "no",
            field["classification"],
            field["description"],
        )
    console.print(table)
    if not item["shareable"]:
        console.print("  never shared with other agencies")
        return
    if not item["shared_with"]:
        console.print("  shared with nobody (request a grant: `databus grants request`)")
        return
    grants = Table("shared with", "fields", "purpose", "legal basis", "expires")
    for grant in item["shared_with"]:
        state = "" if grant["state"] == "active" else " (expired)"
        grants.add_row(
            grant["consumer"],
            ", ".join(grant["fields"]),
            grant["purpose"],
            grant["legal_basis"] or "-",
            grant["expires"] + state,
        )
    console.print(grants)
