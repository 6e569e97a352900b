"""``databus explain PERSON_REF``: a person's state and decisions, with their evidence."""

from __future__ import annotations

import asyncio
from typing import Any

import click
import orjson

from databus.settings import Settings
from databus.streams.explain import Explanation, explain


def _describe(event: dict[str, Any]) -> str:
    data = event["data"]
    kind = event["type"].split(".")[1]
    if kind == "pension_status":
        extra = f"qualified until {data['qualified_until']}"
        if data.get("date_of_death"):
            extra += f", died {data['date_of_death']}"
        return f"{data['as_of']}  pension {data['decision']} ({data['reason']}), {extra}"
    if kind == "fraud_alert":
        return (
            f"{data['activity']['occurred_at'][:10]}  FRAUD ALERT {data['kind']}: activity "
            f"after death on {data['date_of_death']}"
        )
    return (
        f"{data['effective_month']}     allowance {data['decision']} ({data['reason']}), "
        f"tier {data['tier']}, {data['monthly_amount_cents'] / 100:.2f} a month"
    )


def _print(explanation: Explanation) -> None:
    shown = explanation.to_json_dict()
    click.echo(f"person {shown['person_ref']} (partition {shown['partition']})")
    click.echo("state: " + (orjson.dumps(shown["state"]).decode() if shown["state"] else "none"))
    if not shown["decisions"]:
        click.echo("no decisions")
    for decision in shown["decisions"]:
        click.echo(f"- {_describe(decision)}  [{decision['data']['rule_version']}, "
                   f"id {decision['id']}]")  # fmt: skip
        for evidence in decision["evidence_events"]:
            data = {k: v for k, v in evidence["data"].items() if k != "person_ref"}
            click.echo(f"    because {evidence['type']} {evidence['id']}: "
                       f"{orjson.dumps(data).decode()}")  # fmt: skip


@click.command("explain")
@click.argument("person_ref")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def explain_command(settings: Settings, person_ref: str, as_json: bool) -> None:
    """Show PERSON_REF's current state and every decision with the evidence behind it."""
    explanation = asyncio.run(explain(settings, person_ref))
    if as_json:
        click.echo(orjson.dumps(explanation.to_json_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        _print(explanation)
