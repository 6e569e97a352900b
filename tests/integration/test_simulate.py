"""``databus simulate --publish --ticks`` against the real broker: what the summary says
is what the topics hold, each day's tick comes after that day's records, and no raw ID
number reaches a topic or the terminal.

Every run simulates a fresh population (random seed) over days no other test ticks, and
counts only its own residents, so the tests hold on a shared or reused broker too.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter, defaultdict
from collections.abc import Sequence

import pytest

from databus.catalog import CATALOG, CLOCK
from databus.client.intake import Intake
from databus.client.publisher import Publisher
from databus.identity import Pseudonymizer
from databus.records import ClockTick
from databus.settings import Settings
from databus.sim import Day, Province, SimulationConfig, publish_province
from databus.streams.clock import tick_id
from databus.wire import Message
from tests.integration.bus import read_events, read_raw, read_records, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SOURCES = [dataset.name for dataset in CATALOG.sources()]


def _fresh_config(residents: int, days: int) -> SimulationConfig:
    """A population nobody published before, over days in the 2000s nobody ticks."""
    seed = random.randrange(10**9)
    start = dt.date(2000, 1, 1) + dt.timedelta(days=random.randrange(7_000))
    return SimulationConfig(seed=seed, residents=residents, start=start, days=days)


async def _stamps(settings: Settings, topics: Sequence[str]) -> list[tuple[str, int, str]]:
    """(topic, Kafka timestamp, ce_id) of every message in ``topics`` that has a ``ce_id``
    (other tests of the session write raw poison messages into the same topics)."""
    stamps = []
    for message in await read_records(settings, topics):
        ce_id = dict(message.headers).get("ce_id")
        if ce_id is not None:
            stamps.append((message.topic, message.timestamp, ce_id.decode()))
    return stamps


async def test_published_simulation_reads_back_as_summarised(bus_settings: Settings) -> None:
    config = _fresh_config(residents=300, days=20)
    args = ["simulate", "--seed", str(config.seed), "--start", config.start.isoformat()]
    args += ["--residents", str(config.residents), "--days", str(config.days)]
    result = run_cli(bus_settings, *args, "--publish", "--ticks", "--no-progress")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rejected 0, ticked 20 days" in result.stderr, result.stderr

    province = Province(config)
    summary = province.summary()
    pseudonymizer = Pseudonymizer(bus_settings.pseudonym_key_bytes())
    ours = {pseudonymizer.person_ref(r.citizen_id) for r in province.residents}
    events = await read_events(bus_settings, [*SOURCES, CLOCK.name])
    counts = Counter(event.topic for event in events if event.envelope.subject in ours)
    assert dict(counts) == summary.records
    assert counts.total() == summary.total > config.residents

    span = [config.start + dt.timedelta(days=n) for n in range(config.days)]
    partitions = sorted({event.partition for event in events if event.topic == CLOCK.name})
    assert len(partitions) == bus_settings.partitions
    ticks = {}
    for event in events:
        if isinstance(event.record, ClockTick) and config.start <= event.record.as_of < config.end:
            ticks[event.record.as_of, event.partition] = event.envelope.id
    assert ticks == {(day, p): tick_id(day, p) for day in span for p in partitions}

    raw = b"".join(await read_raw(bus_settings, [*SOURCES, CLOCK.name]))
    shown = result.stdout + result.stderr
    for resident in province.residents:
        assert resident.citizen_id.encode() not in raw
        assert resident.citizen_id not in shown


async def test_each_days_tick_follows_its_records_and_precedes_the_next_day(
    bus_settings: Settings,
) -> None:
    """Kafka timestamps: a day's records are acknowledged before its ticks are sent, and
    the next day's records are sent after them."""
    province = Province(_fresh_config(residents=200, days=6))
    pseudonymizer = Pseudonymizer(bus_settings.pseudonym_key_bytes())
    intakes = {name: Intake(CATALOG.get(name), pseudonymizer) for name in SOURCES}
    day_of: dict[str, int] = {}
    for record in province.roster():
        message = intakes[record.dataset].from_mapping(record.values)
        assert isinstance(message, Message)
        day_of[message.id] = -1
    for day in province.days():
        for record in day.records:
            message = intakes[record.dataset].from_mapping(record.values)
            assert isinstance(message, Message)
            day_of[message.id] = day.index
        for partition in range(bus_settings.partitions):
            day_of[tick_id(day.date, partition)] = day.index

    paced: list[dt.date] = []

    async def pace(day: Day) -> None:
        paced.append(day.date)

    async with Publisher(bus_settings) as publisher:
        published = await publish_province(province, publisher, ticks=True, before_tick=pace)
    assert paced == [day.date for day in province.days()]
    assert dict(published.accepted) == province.summary().records
    assert not published.rejected
    assert published.days_ticked == province.config.days

    records: dict[int, list[int]] = defaultdict(list)
    ticks: dict[int, list[int]] = defaultdict(list)
    for topic, stamp, ce_id in await _stamps(bus_settings, [*SOURCES, CLOCK.name]):
        if ce_id in day_of:
            (ticks if topic == CLOCK.name else records)[day_of[ce_id]].append(stamp)
    assert sorted(ticks) == list(range(province.config.days))
    for index in range(province.config.days):
        assert len(ticks[index]) == bus_settings.partitions
        assert max(records[index], default=0) <= min(ticks[index])
        assert max(ticks[index]) <= min(records[index + 1], default=max(ticks[index]))
    # the roster precedes the first day (which may, at this size, have no records)
    assert max(records[-1]) <= min(records[0] + ticks[0])
