"""Running a decision worker: the Faust worker around a :class:`DecisionEngine`."""

from __future__ import annotations

import datetime as dt
import logging

import faust

from databus.rules import Policy
from databus.settings import Settings
from databus.streams.app import DecisionEngine, EngineOptions
from databus.streams.clock import local_today, publish_ticks

log = logging.getLogger(__name__)

#: How often the leader checks whether a new local day has begun.
DAILY_TICK_CHECK_S = 10.0


def add_daily_ticks(engine: DecisionEngine, settings: Settings, time_zone: str) -> None:
    """Let the leader worker publish a tick whenever a new local day begins.

    After a restart the current day is ticked again; ticks are idempotent.
    """
    last: list[dt.date] = []

    @engine.app.timer(DAILY_TICK_CHECK_S, on_leader=True)  # type: ignore[untyped-decorator]
    async def daily_tick() -> None:
        today = local_today(time_zone)
        if not last or last[-1] != today:
            count = await publish_ticks(settings, today)
            log.info("ticked %s on %d partitions", today, count)
            last[:] = [today]


def run_worker(
    settings: Settings,
    policy: Policy,
    options: EngineOptions,
    *,
    daily_ticks: bool = False,
    loglevel: str = "WARNING",
) -> None:
    """Run one worker until it is stopped (SIGINT or SIGTERM); several may run at once."""
    engine = DecisionEngine(settings, policy, options)
    if daily_ticks:
        add_daily_ticks(engine, settings, policy.time_zone)
    worker = faust.Worker(engine.app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
