"""Clock ticks: the passing of days, one tick per partition of ``system.clock.v1``.

Decisions never read the wall clock; a tick says "day D has begun" to every partition,
and each partition's worker visits the persons due on D. Ticks are idempotent: the same
day ticked twice decides nothing new.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaProducer

from databus.catalog import CLOCK
from databus.client.publisher import producer_options
from databus.records import ClockTick
from databus.settings import Settings
from databus.wire import Encoder


def tick_id(as_of: dt.date, partition: int) -> str:
    """One id per day and partition, so a repeated tick is recognisably the same."""
    return hashlib.sha256(f"{CLOCK.name}\0{as_of}\0{partition}".encode()).hexdigest()[:32]


async def publish_ticks(settings: Settings, as_of: dt.date) -> int:
    """Publish one tick for ``as_of`` to every partition; returns the partition count."""
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(CLOCK.topic))
        encoder = Encoder(CLOCK, "databus-clock")
        data = ClockTick(as_of=as_of).model_dump(mode="json")
        pending = []
        for partition in partitions:
            message = encoder.encode(data, event_id=tick_id(as_of, partition))
            pending.append(
                await producer.send(
                    CLOCK.topic, message.value, partition=partition, headers=message.headers
                )
            )
        for future in pending:
            await future
        return len(partitions)
    finally:
        await producer.stop()


def local_today(time_zone: str) -> dt.date:
    """Today in the province's time zone: the only place the wall clock enters."""
    return dt.datetime.now(ZoneInfo(time_zone)).date()
