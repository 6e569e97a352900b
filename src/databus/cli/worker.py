"""``databus worker`` and ``databus clock tick``: run the decision engine, move time."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from pathlib import Path
from typing import Any

import click

from databus.errors import DatabusError
from databus.governance.operations import operation_record, record_operation
from databus.metrics import DEFAULT_HOST
from databus.ops.data_dirs import take_data_dir, take_free_slot
from databus.ops.private_files import PRIVATE_UMASK, make_tree_private
from databus.ops.topics import cluster_replication
from databus.records.audit import OperationAction
from databus.rules import load_policy
from databus.sandbox import on_demo_broker
from databus.settings import Settings
from databus.streams.clock import (
    MAX_TICK_GAP_DAYS,
    days_to_tick,
    last_tick,
    local_today,
    publish_days,
    publish_ticks,
    tick_problems,
)


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where this worker keeps its RocksDB tables, used by it alone (default: the first "
    "free one of worker, worker-2, ... under the state dir).",
)
@click.option(
    "--web-port", type=int, help="Serve /metrics, /livez and /readyz on this port (only those)."
)
@click.option(
    "--web-host",
    default=DEFAULT_HOST,
    show_default=True,
    metavar="ADDRESS",
    help="Address the web port listens on; 0.0.0.0 for every interface (a pod, a container).",
)
@click.option("--daily-ticks", is_flag=True, help="Leader publishes a clock tick each new day.")
@click.option("--memory-store", is_flag=True, help="Keep tables in memory (tests, demos).")
@click.option(
    "--session-timeout",
    type=click.FloatRange(min=6),
    default=60.0,
    show_default=True,
    help="Seconds before the group gives a silent (crashed) worker's partitions to others.",
)
@click.option(
    "--guarantee",
    type=click.Choice(["exactly-once", "at-least-once"]),
    default="exactly-once",
    show_default=True,
    help="exactly-once: each batch's decisions, state and input offsets in one Kafka "
    "transaction per partition; at-least-once: a worker killed mid-batch may deliver some "
    "decisions again (same ids), for a little more throughput.",
)
@click.pass_obj
def worker(
    settings: Settings,
    *,
    data_dir: Path | None,
    guarantee: str,
    web_port: int | None,
    web_host: str,
    daily_ticks: bool,
    memory_store: bool,
    session_timeout: float,
) -> None:
    """Run a decision worker (start several to spread the partitions)."""
    # Faust is imported only by the commands that run it: it is slow to load.
    from databus.streams.app import EngineOptions  # noqa: PLC0415
    from databus.streams.table import STORE_SCHEME  # noqa: PLC0415
    from databus.streams.worker import run_worker  # noqa: PLC0415

    # Before the data dir: a worker that cannot reach Kafka says so, and takes no slot.
    replication = asyncio.run(cluster_replication(settings))
    # One directory per running worker (RocksDB lets one process open a table); the
    # lock is held until this process ends.
    held = take_data_dir(data_dir) if data_dir else take_free_slot(settings.state_dir)
    datadir = held.path
    # Its tables hold every person's state: private to this user, like the broker's data.
    make_tree_private(datadir)
    os.umask(PRIVATE_UMASK)
    options = EngineOptions(
        replication_factor=replication,
        store="memory://" if memory_store else f"{STORE_SCHEME}://",
        datadir=datadir,
        web_port=web_port,
        web_host=web_host,
        session_timeout_s=session_timeout,
        guarantee="exactly_once" if guarantee == "exactly-once" else "at_least_once",
    )
    try:
        run_worker(
            settings,
            load_policy(settings.policy_file),
            options,
            daily_ticks=daily_ticks,
            # `databus -v worker`: Faust's own progress lines (rebalances, recovery) too.
            loglevel=logging.getLevelName(min(logging.getLogger().level, logging.WARNING)),
        )
    finally:
        held.release()


@click.group()
def clock() -> None:
    """The bus clock: decisions learn that a day has passed from ticks."""


@clock.command("tick")
@click.option(
    "--date",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The day that has begun (default: today in the policy's time zone).",
)
@click.option(
    "--allow-future",
    is_flag=True,
    help="Tick a day after tomorrow: deadlines up to it fall due now (needs --reason).",
)
@click.option(
    "--allow-gap",
    is_flag=True,
    help=f"Tick a day more than {MAX_TICK_GAP_DAYS} days after the last tick, skipping the "
    "days between (needs --reason).",
)
@click.option(
    "--fill", is_flag=True, help="Tick every day from the last tick up to --date, in order."
)
@click.option("--reason", help="Why (recorded in audit.operations.v1).")
@click.pass_obj
def tick(
    settings: Settings,
    *,
    as_of: dt.datetime | None,
    allow_future: bool,
    allow_gap: bool,
    fill: bool,
    reason: str | None,
) -> None:
    """Publish one tick to every partition of system.clock.v1 (guarded, audited)."""
    policy = load_policy(settings.policy_file)
    today = local_today(policy.time_zone)
    day = as_of.date() if as_of else today
    if (allow_future or allow_gap) and not reason:
        raise click.UsageError("--allow-future and --allow-gap need --reason")
    asyncio.run(
        _tick(
            settings, day, today=today, allow_future=allow_future, allow_gap=allow_gap,
            fill=fill, reason=reason,
        )
    )  # fmt: skip


async def _tick(
    settings: Settings,
    day: dt.date,
    *,
    today: dt.date,
    allow_future: bool,
    allow_gap: bool,
    fill: bool,
    reason: str | None,
) -> None:
    last = await last_tick(settings)
    demo = await on_demo_broker(settings)
    problems = tick_problems(
        day, today=today, last=last, allow_future=allow_future or demo, allow_gap=allow_gap or fill
    )
    forced = [name for name, on in (("future", allow_future), ("gap", allow_gap)) if on]
    details = {
        "as_of": day.isoformat(),
        "last_tick": None if last is None else last.isoformat(),
        "today": today.isoformat(),
        "forced": forced,
        "fill": fill,
        "demo_broker": demo,
    }
    if problems:
        await _audit(settings, "clock.tick", "refused", reason, details | {"problems": problems})
        raise DatabusError("refused: " + "; ".join(problems))
    await _audit(settings, "clock.tick", "done", reason, details)
    days = days_to_tick(day, last, fill=fill)
    count = await publish_days(settings, days)
    shown = str(day) if len(days) == 1 else f"{days[0]} to {day} ({len(days)} days)"
    click.echo(f"ticked {shown} on {count} partitions")


@clock.command("reset")
@click.option(
    "--to",
    "to_day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    required=True,
    help="The day the bus really is at: every tick for a later day is withdrawn.",
)
@click.option("--reason", required=True, help="Why (recorded in audit.operations.v1).")
@click.pass_obj
def reset(settings: Settings, *, to_day: dt.datetime, reason: str) -> None:
    """Undo ticks for days after --to: the workers reinstate what they decided (pensions
    suspended by them resume, allowance tiers they raised go back), and are audited."""
    policy = load_policy(settings.policy_file)
    asyncio.run(_reset(settings, to_day.date(), local_today(policy.time_zone), reason))


async def _reset(settings: Settings, day: dt.date, today: dt.date, reason: str) -> None:
    last = await last_tick(settings)
    details = {
        "to": day.isoformat(),
        "last_tick": None if last is None else last.isoformat(),
        "today": today.isoformat(),
    }
    problems = []
    if day > today + dt.timedelta(days=1):
        problems.append(f"{day} is after tomorrow (today is {today}): reset to a real day")
    if last is None or last <= day:
        problems.append(f"the bus is at {last or 'no tick yet'}: no tick after {day} to withdraw")
    if problems:
        await _audit(settings, "clock.reset", "refused", reason, details | {"problems": problems})
        raise DatabusError("refused: " + "; ".join(problems))
    await _audit(settings, "clock.reset", "done", reason, details)
    count = await publish_ticks(settings, day, reset=True, reason=reason)
    click.echo(f"reset the clock to {day} on {count} partitions (ticks after it withdrawn)")


async def _audit(
    settings: Settings,
    action: OperationAction,
    outcome: str,
    reason: str | None,
    details: dict[str, Any],
) -> None:
    """Record the action first: one that cannot be audited is not done. A refusal that
    cannot be recorded is still refused (and says so)."""
    record = operation_record(settings, action, outcome, reason=reason, details=details)
    try:
        await record_operation(settings, record)
    except DatabusError as failed:
        if outcome == "refused":
            click.echo(f"warning: the refusal could not be recorded: {failed}", err=True)
            return
        raise DatabusError(f"not done, because it could not be audited: {failed}") from failed
