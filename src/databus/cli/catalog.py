"""``databus catalog``: what datasets exist, who owns them, how they are classified."""

from __future__ import annotations

import click
import orjson
from rich.console import Console
from rich.table import Table

from databus.catalog import CATALOG
from databus.settings import Settings


def _console() -> Console:
    """A console that does not squeeze tables to 80 columns when output is piped."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def _retention(ms: int) -> str:
    return "forever" if ms < 0 else f"{ms // 86_400_000} days"


@click.group()
def catalog() -> None:
    """Datasets on the bus: topics, owners, keys, fields and their classification."""


@catalog.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def list_datasets(settings: Settings, as_json: bool) -> None:
    """List every dataset."""
    described = [d.describe(settings.partitions) for d in CATALOG]
    if as_json:
        click.echo(orjson.dumps(described, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table("dataset", "owner", "key", "partitions", "retention", "level", "fields")
    for item in described:
        table.add_row(
            item["dataset"],
            item["owner"],
            item["key"] or "-",
            str(item["partitions"]),
            _retention(item["retention_ms"]),
            item["level"],
            str(len(item["fields"])),
        )
    _console().print(table)


@catalog.command("show")
@click.argument("dataset")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def show_dataset(settings: Settings, dataset: str, as_json: bool) -> None:
    """Show one dataset with its fields."""
    item = CATALOG.get(dataset).describe(settings.partitions)
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
