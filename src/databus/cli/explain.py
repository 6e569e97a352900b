"""``databus explain PERSON_REF``: a person's state and decisions, with their evidence."""

from __future__ import annotations

import asyncio
from typing import Any

import click
import orjson

from databus.catalog import CATALOG
from databus.governance.views import catalog_with_views, configured_grants
from databus.settings import Settings
from databus.streams.explain import Explanation, explain


class _Shown(dict[str, Any]):
    """A decision's data; a field a share view does not carry reads as "?"."""

    def __missing__(self, key: str) -> str:
        return "?"


def _describe(event: dict[str, Any]) -> str:
    data = _Shown(event["data"])
    kind = event["dataset"].split(".")[1]
    if kind == "pension_status":
        extra = f"qualified until {data['qualified_until']}"
        if data.get("date_of_death"):
            extra += f", died {data['date_of_death']}"
        return f"{data['as_of']}  pension {data['decision']} ({data['reason']}), {extra}"
    if kind == "fraud_alert":
        activity = data.get("activity") or {"occurred_at": "?"}
        return (
            f"{activity['occurred_at'][:10]}  FRAUD ALERT {data['kind']}: activity "
            f"after death on {data['date_of_death']}"
        )
    cents = data.get("monthly_amount_cents")
    amount = f"{cents / 100:.2f}" if isinstance(cents, int) else "?"
    return (
        f"{data['effective_month']}     allowance {data['decision']} ({data['reason']}), "
        f"tier {data['tier']}, {amount} a month"
    )


def _print(explanation: Explanation) -> None:
    shown = explanation.to_json_dict()
    click.echo(f"person {shown['person_ref']} (partition {shown['partition']})")
    click.echo("state: " + (orjson.dumps(shown["state"]).decode() if shown["state"] else "none"))
    if not shown["decisions"]:
        click.echo("no decisions")
    for decision in shown["decisions"]:
        version = decision["data"].get("rule_version", "?")
        click.echo(f"- {_describe(decision)}  [{version}, id {decision['id']}]")
        for evidence in decision["evidence_events"]:
            data = {k: v for k, v in evidence["data"].items() if k != "person_ref"}
            click.echo(f"    because {evidence['dataset'] or evidence['type']} {evidence['id']}: "
                       f"{orjson.dumps(data).decode()}")  # fmt: skip
    if explanation.unseen:
        views = [topic for topic in explanation.read if explanation.datasets[topic] != topic]
        if views:
            click.echo(f"read as {explanation.principal} through: {', '.join(views)}")
        click.echo(f"not seen by {explanation.principal}:")
        by_why: dict[str, list[str]] = {}
        for unseen in explanation.unseen:
            by_why.setdefault(unseen.why, []).append(unseen.topic)
        for why, topics in by_why.items():
            click.echo(f"    {why}: {', '.join(topics)}")


@click.command("explain")
@click.argument("person_ref")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def explain_command(settings: Settings, person_ref: str, as_json: bool) -> None:
    """Show PERSON_REF's current state and every decision with the evidence behind it.

    Read as the configured principal, from what it may read: an agency sees the
    decisions and evidence its grants share with it (its share views), and is told
    what it could not see; the super user sees everything.
    """
    grants = configured_grants(settings)
    views = {g.dataset: g.share_topic for g in grants.for_consumer(settings.principal())}
    catalog = catalog_with_views(grants, CATALOG)
    explanation = asyncio.run(explain(settings, person_ref, catalog=catalog, views=views))
    if as_json:
        click.echo(orjson.dumps(explanation.to_json_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        _print(explanation)
