"""``databus schemas``: keep the committed JSON Schemas in step with the catalog."""

from __future__ import annotations

from pathlib import Path

import click

from databus.catalog import SCHEMA_DIR
from databus.schemas.export import ExportPlan, apply_export, next_major, plan_export

_LABELS = {
    "created": "created",
    "changed": "changed",
    "unchanged": "unchanged",
    "orphan": "removed",
}
_STALE_LABELS = {"created": "missing", "changed": "changed", "orphan": "orphan"}


@click.group()
def schemas() -> None:
    """JSON Schemas of every dataset, generated from the catalog."""


@schemas.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(SCHEMA_DIR),
    show_default=True,
    help="Where the schema files live.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 if the files are stale or a change is not backward compatible.",
)
@click.pass_context
def export(ctx: click.Context, directory: Path, check: bool) -> None:
    """Write <dir>/<dataset>/{input,bus}.schema.json for every dataset in the catalog.

    A change to an existing file must be backward compatible (docs/schemas.md);
    otherwise nothing is written and the change needs a new major version.
    """
    plan = plan_export(directory)
    if check:
        _check(ctx, plan)
        return
    if plan.incompatible:
        _report_incompatible(plan)
        ctx.exit(1)
    apply_export(plan)
    for file in plan.files:
        click.echo(f"{_LABELS[file.status]:<10} {directory / file.relpath}")
    counts = {s: sum(f.status == s for f in plan.files) for s in _LABELS}
    click.echo(
        f"wrote {counts['created'] + counts['changed']}, removed {counts['orphan']}, "
        f"left {counts['unchanged']} unchanged"
    )


def _check(ctx: click.Context, plan: ExportPlan) -> None:
    """Report staleness and incompatibilities; both are errors in CI."""
    for file in plan.stale:
        click.echo(f"{_STALE_LABELS[file.status]:<8} {plan.directory / file.relpath}", err=True)
    if plan.stale:
        click.echo(f"{plan.directory} is stale: run `databus schemas export`", err=True)
    if plan.incompatible:
        _report_incompatible(plan)
    if plan.stale or plan.incompatible:
        ctx.exit(1)
    click.echo(f"{plan.directory} is up to date ({len(plan.files)} files)")


def _report_incompatible(plan: ExportPlan) -> None:
    for line in plan.describe_incompatibilities():
        click.echo(f"incompatible: {line}", err=True)
    for name in sorted({f.dataset for f in plan.incompatible}):
        click.echo(
            f"{name}: this change would break readers of the existing topic; keep it backward "
            f"compatible, or bump the major version (a new dataset {next_major(name)})",
            err=True,
        )
