"""Publishing a simulation to the bus with the Publisher SDK, day by day.

The registers go first, one dataset after the other (households, pensions, then last
year's face scans), each acknowledged before the next. Then every day: its records,
all datasets at once, and once Kafka has acknowledged all of them, optionally one clock
tick per partition for that day, so that a worker never sees a day's tick before the
day's records on any partition.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer

from databus.catalog import CLOCK
from databus.client.lifecycle import Startable
from databus.client.publisher import Publisher
from databus.errors import DatabusError
from databus.rules import load_policy
from databus.runtime.producers import producer_options
from databus.settings import Settings
from databus.sim.kinds import AgencyRecord, Values
from databus.sim.province import Day, Province
from databus.streams.clock import CLOCK_SOURCE, local_today, tick_id, tick_problems, tick_value
from databus.wire import Encoder, Rejection


@dataclass(slots=True)
class PublishedSimulation:
    """What reached the bus: records accepted and rejected per dataset, days ticked."""

    accepted: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    days_ticked: int = 0

    @property
    def total(self) -> int:
        """Every record offered."""
        return self.accepted.total() + self.rejected.total()


class DayTicks(Startable):
    """Clock ticks for one day after another from one producer.

    The same messages as :func:`databus.streams.clock.publish_ticks` (same ids, source
    and partitions), which starts a producer for every call: about 50 ms a day, too slow
    for a simulation of hundreds of days.
    """

    def __init__(self, settings: Settings, *, future_allowed: bool = False) -> None:
        """``future_allowed``: may tick days after tomorrow (a demo broker's sandbox);
        elsewhere such a tick is refused, as ``databus clock tick`` refuses it."""
        self._producer = AIOKafkaProducer(**producer_options(settings, linger_ms=0))
        self._encoder = Encoder(CLOCK, CLOCK_SOURCE)
        self._partitions: list[int] = []
        self._future_allowed = future_allowed
        self._time_zone = load_policy(settings.policy_file).time_zone

    async def start(self) -> None:
        """Connect and learn the clock topic's partitions."""
        await self._producer.start()
        self._partitions = sorted(await self._producer.partitions_for(CLOCK.topic))

    async def stop(self) -> None:
        """Deliver what is pending, then disconnect."""
        await self._producer.stop()

    async def tick(self, as_of: dt.date) -> int:
        """One tick for ``as_of`` on every partition, acknowledged; returns how many."""
        if not self._future_allowed:
            problems = tick_problems(
                as_of, today=local_today(self._time_zone), last=None, allow_future=False,
                allow_gap=True,
            )  # fmt: skip
            if problems:
                raise DatabusError(f"the simulation stops before ticking {as_of}: {problems[0]}")
        data = tick_value(as_of)
        pending = []
        for partition in self._partitions:
            message = self._encoder.encode(data, event_id=tick_id(as_of, partition))
            pending.append(
                await self._producer.send(
                    CLOCK.topic, message.value, partition=partition, headers=message.headers
                )
            )
        await asyncio.gather(*pending)
        return len(pending)


async def publish_province(
    province: Province,
    publisher: Publisher,
    *,
    ticks: bool = False,
    on_records: Callable[[int], None] | None = None,
    on_rejection: Callable[[Rejection], None] | None = None,
    before_tick: Callable[[Day], Awaitable[None]] | None = None,
) -> PublishedSimulation:
    """Publish the roster, then each day (and its clock tick when ``ticks``).

    ``on_records(n)`` is called after each acknowledged group of ``n`` records (for a
    progress bar); ``on_rejection`` sees every rejected record (there should be none);
    ``before_tick(day)`` is awaited once a day's records are acknowledged and before its
    tick, for a caller that paces the days (Kafka keeps no order across topics, so a
    worker that falls behind may read a tick before the records published before it).
    """
    result = PublishedSimulation()

    async def publish(dataset: str, values: list[Values]) -> None:
        summary = await publisher.publish_many(
            dataset, values, on_rejection=on_rejection, origin=f"simulated {dataset}"
        )
        result.accepted[dataset] += summary.accepted
        if summary.rejected:
            result.rejected[dataset] += summary.rejected

    for dataset, values in _by_dataset(province.roster()).items():
        await publish(dataset, values)
        if on_records is not None:
            on_records(len(values))
    clock = DayTicks(publisher.settings, future_allowed=publisher.demo_broker) if ticks else None
    if clock is not None:
        await clock.start()
    try:
        for day in province.days():
            groups = _by_dataset(day.records)
            await asyncio.gather(*(publish(dataset, values) for dataset, values in groups.items()))
            if before_tick is not None:
                await before_tick(day)
            if clock is not None:
                await clock.tick(day.date)
                result.days_ticked += 1
            if on_records is not None:
                on_records(len(day.records))
    finally:
        if clock is not None:
            await clock.stop()
    return result


def _by_dataset(records: Iterable[AgencyRecord]) -> dict[str, list[dict[str, Any]]]:
    """The records grouped by dataset, in order of first appearance."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for dataset, values in records:
        groups.setdefault(dataset, []).append(values)
    return groups
