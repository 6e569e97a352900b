"""Running a decision worker: the Faust worker around a :class:`DecisionEngine`."""

from __future__ import annotations

import datetime as dt
import logging

import faust

from databus.rules import Policy
from databus.settings import Settings
from databus.streams.app import DecisionEngine, EngineOptions
from databus.streams.clock import days_to_tick, last_tick, local_today, publish_days

log = logging.getLogger(__name__)

#: How often the leader checks whether a new local day has begun.
DAILY_TICK_CHECK_S = 10.0
#: The most missed days the leader ticks one by one after an outage.
FILL_DAYS_MAX = 31


def add_daily_ticks(engine: DecisionEngine, settings: Settings, time_zone: str) -> None:
    """Let the leader worker publish a tick whenever a new local day begins.

    Days missed while no worker ran (up to :data:`FILL_DAYS_MAX`) are ticked first, in
    order, so that no reminder window is jumped over; after a longer outage only today
    is ticked (the workers count it as a gap, and an alert fires). After a restart the
    current day is ticked again; ticks are idempotent.
    """
    last: list[dt.date] = []

    @engine.app.timer(DAILY_TICK_CHECK_S, on_leader=True)  # type: ignore[untyped-decorator]
    async def daily_tick() -> None:
        today = local_today(time_zone)
        if last and last[-1] == today:
            return
        bus_at = await last_tick(settings)
        days = days_to_tick(today, bus_at, fill=True)
        if len(days) > FILL_DAYS_MAX:
            log.error("no tick since %s: ticking only %s (a gap)", bus_at, today)
            days = [today]
        count = await publish_days(settings, days)
        log.info("ticked %s to %s on %d partitions", days[0], today, count)
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
