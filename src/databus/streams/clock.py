"""Clock ticks: the passing of days, one tick per partition of ``system.clock.v1``.

Decisions never read the wall clock; a tick says "day D has begun" to every partition,
and each partition's worker visits the persons due on D. Ticks are idempotent: the same
day ticked twice decides nothing new.

One tick can change many decisions at once (a tick for 2099 suspends every pension), so
``databus clock tick`` is guarded (:func:`tick_problems`): a day after tomorrow, a day
more than :data:`MAX_TICK_GAP_DAYS` after the last tick, or an earlier day than the
last one is refused unless the operator says, with a flag that names it and a reason,
that this is meant. A mistaken tick is undone by a *reset* (:func:`publish_ticks` with
``reset``): the bus is set back to a day, every later tick is withdrawn and what those
ticks decided is reinstated by the rules. Workers count every tick by
:func:`tick_kind` (``databus_worker_ticks_total``), so a suspicious one is visible
however it was written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from databus.catalog import CLOCK
from databus.client.topics import require_topics
from databus.internals import kafka_client
from databus.records import ClockTick
from databus.runtime.producers import producer_options
from databus.settings import Settings
from databus.wire import Encoder

#: More days than this between a partition's tick and the next one is a gap: every
#: deadline inside falls due at once and reminders inside are never sent.
MAX_TICK_GAP_DAYS = 7
#: ``ce_source`` of ticks.
CLOCK_SOURCE = "databus-clock"
#: How many of a partition's newest records are read to find the day the bus is at.
_TAIL = 16

TickKind = Literal["first", "next_day", "same_day", "gap", "backwards", "future", "reset"]


def tick_id(as_of: dt.date, partition: int, *, reset: bool = False) -> str:
    """One id per day and partition (and kind), so a repeated tick is recognisably the same."""
    text = f"{CLOCK.name}\0{as_of}\0{partition}" + ("\0reset" if reset else "")
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def tick_value(as_of: dt.date, *, reset: bool = False, reason: str | None = None) -> dict[str, Any]:
    """The JSON value of a tick; an ordinary tick is just ``{"as_of": ...}``."""
    tick = ClockTick(as_of=as_of, reset=reset, reason=reason)
    return tick.model_dump(mode="json", exclude_defaults=True)


def tick_kind(tick: ClockTick, last: dt.date | None, received: dt.date | None) -> TickKind:
    """How ``tick`` relates to the partition's previous tick ``last`` and to the local
    day ``received`` on which the broker appended it."""
    if tick.reset:
        return "reset"
    if received is not None and tick.as_of > received + dt.timedelta(days=1):
        return "future"
    return _after(tick.as_of, last)


def _after(day: dt.date, last: dt.date | None) -> TickKind:
    if last is None:
        return "first"
    if day <= last:
        return "same_day" if day == last else "backwards"
    return "gap" if (day - last).days > MAX_TICK_GAP_DAYS else "next_day"


def tick_problems(
    as_of: dt.date,
    *,
    today: dt.date,
    last: dt.date | None,
    allow_future: bool,
    allow_gap: bool,
) -> list[str]:
    """Why ``databus clock tick`` must not tick ``as_of`` as asked (empty: it may)."""
    problems = []
    if as_of > today + dt.timedelta(days=1) and not allow_future:
        problems.append(
            f"{as_of} is after tomorrow (today is {today}): a tick decides every deadline up "
            "to its day for every person at once; --allow-future ticks it anyway (for "
            "simulations use a demo broker, where future days are allowed)"
        )
    if last is not None and as_of < last:
        problems.append(
            f"the bus is already at {last}: ticks never go back, an earlier day decides "
            f"nothing; to undo later ticks run `databus clock reset --to {as_of}`"
        )
    elif last is not None and (as_of - last).days > MAX_TICK_GAP_DAYS and not allow_gap:
        problems.append(
            f"{as_of} is {(as_of - last).days} days after the last tick ({last}): every "
            "deadline in between falls due at once and reminders in between are never "
            "sent; --fill ticks each day in between in order, --allow-gap ticks only "
            f"{as_of}"
        )
    return problems


def days_to_tick(as_of: dt.date, last: dt.date | None, *, fill: bool) -> list[dt.date]:
    """``as_of``, preceded with ``fill`` by every day after ``last`` before it."""
    if not fill or last is None or as_of <= last:
        return [as_of]
    return [last + dt.timedelta(days=n) for n in range(1, (as_of - last).days + 1)]


def bus_day(ticks: Iterable[ClockTick]) -> dt.date | None:
    """The day a partition's ticks (oldest first) leave the bus at."""
    day: dt.date | None = None
    for tick in ticks:
        if tick.reset:
            day = tick.as_of
        elif day is None or tick.as_of > day:
            day = tick.as_of
    return day


async def last_tick(settings: Settings) -> dt.date | None:
    """The day the bus is at: the latest day its partitions' newest ticks leave it at."""
    consumer = AIOKafkaConsumer(
        **settings.kafka_client_options(),
        client_id=f"{settings.client_id}-clock",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        await consumer.start()
        cluster = await require_topics(
            kafka_client(consumer), [CLOCK.topic], settings, access="read"
        )
        numbers = sorted(cluster.partitions_for_topic(CLOCK.topic) or ())
        partitions = [TopicPartition(CLOCK.topic, p) for p in numbers]
        consumer.assign(partitions)
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        days = []
        for tp in partitions:
            if ends[tp] <= starts[tp]:
                continue
            consumer.seek(tp, max(starts[tp], ends[tp] - _TAIL))
            ticks = []
            while await consumer.position(tp) < ends[tp]:
                for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                    try:
                        ticks.append(ClockTick.model_validate_json(record.value or b""))
                    except ValidationError:
                        continue  # not a tick: the worker dead-letters it
            day = bus_day(ticks)
            if day is not None:
                days.append(day)
        return max(days, default=None)
    finally:
        await consumer.stop()


async def publish_ticks(
    settings: Settings,
    as_of: dt.date,
    *,
    reset: bool = False,
    reason: str | None = None,
) -> int:
    """Publish one tick (or reset) for ``as_of`` to every partition; returns the
    partition count."""
    return await publish_days(settings, [as_of], reset=reset, reason=reason)


async def publish_days(
    settings: Settings,
    days: Sequence[dt.date],
    *,
    reset: bool = False,
    reason: str | None = None,
) -> int:
    """Publish a tick for each of ``days`` in order to every partition, each day's ticks
    acknowledged before the next day's are sent; returns the partition count."""
    producer = AIOKafkaProducer(**producer_options(settings))
    try:
        await producer.start()
        await require_topics(producer.client, [CLOCK.topic], settings, access="write")
        partitions = sorted(await producer.partitions_for(CLOCK.topic))
        encoder = Encoder(CLOCK, CLOCK_SOURCE)
        for day in days:
            data = tick_value(day, reset=reset, reason=reason)
            pending = []
            for partition in partitions:
                message = encoder.encode(data, event_id=tick_id(day, partition, reset=reset))
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
