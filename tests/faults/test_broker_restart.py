"""Stop and restart the broker in the middle of a large publish.

``Publisher.publish_many`` sends 150,000 records; once the first 20,000 are
acknowledged, the test stops the LocalBroker (a clean shutdown, SIGTERM) and starts it
again on the same ports and data directory. The publisher must ride it out: every record
it reports accepted is in the topic exactly once (idempotent producer, ``acks=all``),
none is lost, none is duplicated.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from databus.catalog import CATALOG
from databus.client.intake import Intake
from databus.client.publisher import IN_FLIGHT, Publisher
from databus.identity import Pseudonymizer
from databus.ops.broker import LocalBroker, free_ports
from databus.ops.topics import apply_topics
from databus.settings import Settings
from databus.wire import Message
from tests.conftest import TEST_KEY
from tests.factories import make_citizen_id, sample_input
from tests.faults.conftest import Note

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

DATASET = "health.hospital_visit.v1"
RECORDS = 150_000
#: The broker is stopped once this many records are acknowledged.
STOP_AFTER = IN_FLIGHT


@contextmanager
def _own_broker(directory: Path) -> Iterator[tuple[LocalBroker, Settings]]:
    port, controller = free_ports(2)
    broker = LocalBroker(directory, Settings().cache_dir, port=port, controller_port=controller)
    bootstrap = broker.start()
    try:
        settings = own_bus_settings(bootstrap)
        yield broker, settings
    finally:
        broker.stop()


def own_bus_settings(bootstrap: str) -> Settings:
    """Settings for a fault test's own brokers at ``bootstrap``, whose topics it applies."""
    settings = Settings(
        bootstrap_servers=bootstrap, pseudonym_key=TEST_KEY.decode(), demo=False, partitions=4
    )
    asyncio.run(apply_topics(settings))
    return settings


def _records() -> list[dict[str, object]]:
    """Distinct hospital visits (distinct content, so distinct ce_ids)."""
    born = dt.date(1940, 1, 1)
    return [
        sample_input(
            DATASET,
            make_citizen_id("370102", born + dt.timedelta(days=n % 9000), n % 1000),
            visit_id=f"V-{n}",
        )
        for n in range(RECORDS)
    ]


@dataclass
class Outage:
    """When the broker went down and came back, on the monotonic clock."""

    stopping: float = 0.0
    stopped: float = 0.0
    started: float = 0.0
    progress: list[tuple[float, int]] = field(default_factory=list)


async def _publish_through_restart(
    settings: Settings, broker: LocalBroker, records: list[dict[str, object]], outage: Outage
) -> tuple[int, int, float]:
    """Publish ``records`` while the broker restarts; returns accepted, rejected and
    when the publish ended."""
    first_settled = asyncio.Event()

    def on_progress(done: int) -> None:
        outage.progress.append((time.monotonic(), done))
        if done >= STOP_AFTER:
            first_settled.set()

    def restart() -> None:
        outage.stopping = time.monotonic()
        assert broker.stop()
        outage.stopped = time.monotonic()
        broker.start()
        outage.started = time.monotonic()

    async def restart_when_due() -> None:
        await first_settled.wait()
        await asyncio.to_thread(restart)

    restarter = asyncio.create_task(restart_when_due())
    async with Publisher(settings) as publisher:
        summary = await publisher.publish_many(DATASET, records, on_progress=on_progress)
    ended = time.monotonic()
    await restarter
    return summary.accepted, summary.rejected, ended


async def _ce_ids(settings: Settings, topic: str) -> Counter[bytes]:
    """How often each ce_id is in ``topic`` (read to its end, without a group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        seen: Counter[bytes] = Counter()
        while remaining:
            for tp, messages in (await consumer.getmany(timeout_ms=1000)).items():
                for message in messages:
                    seen[dict(message.headers)["ce_id"]] += 1
                    if message.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
        return seen
    finally:
        await consumer.stop()


def test_every_accepted_record_lands_once_across_a_broker_restart(
    tmp_path: Path, figures: Note
) -> None:
    records = _records()
    intake = Intake(CATALOG.get(DATASET), Pseudonymizer(TEST_KEY))
    messages = [intake.from_mapping(record) for record in records]
    assert all(isinstance(m, Message) for m in messages)
    expected = {m.id.encode() for m in messages if isinstance(m, Message)}
    assert len(expected) == RECORDS

    outage = Outage()
    with _own_broker(tmp_path) as (broker, settings):
        started = time.monotonic()
        accepted, rejected, ended = asyncio.run(
            _publish_through_restart(settings, broker, records, outage)
        )
        landed = asyncio.run(_ce_ids(settings, DATASET))

    assert (accepted, rejected) == (RECORDS, 0)
    assert outage.stopped > 0, "the broker was never stopped"
    done_before_stop = max((n for t, n in outage.progress if t < outage.stopping), default=0)
    assert done_before_stop < RECORDS, "the publish ended before the broker stopped"
    assert ended > outage.started, "the publish did not outlast the outage"
    assert set(landed) == expected, (
        f"{len(expected - set(landed))} accepted records lost, "
        f"{len(set(landed) - expected)} unexpected records"
    )
    duplicated = {ident: n for ident, n in landed.items() if n > 1}
    assert not duplicated, f"{len(duplicated)} records landed more than once"

    figures("records", RECORDS)
    figures("acknowledged_before_the_stop", done_before_stop)
    figures("broker_down_s", round(outage.started - outage.stopping, 1))
    figures("publish_s", round(ended - started, 1))
    figures("landed_once", sum(1 for n in landed.values() if n == 1))
