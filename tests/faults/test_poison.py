"""Poison written straight into a source topic and the clock topic by a raw Kafka client.

While a worker runs, a plain aiokafka producer writes garbage bytes, broken or forged
``ce_*`` headers, tombstones, a near-megabyte value and invalid ticks, each on the
partition of a pensioner whose good events follow it. Every poison message must be
dead-lettered with its topic, partition and offset (and no ID number); the evidence and
the tick after it must still be decided, and nothing else.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from databus.catalog import CATALOG, CLOCK
from databus.client.intake import Intake
from databus.client.publisher import Publisher
from databus.identity import ID_LIKE, Pseudonymizer
from databus.records import ElderlyAllowance, FraudAlert, PensionStatus, Rejected
from databus.settings import Settings
from databus.streams.clock import publish_ticks
from databus.wire import Message
from tests.factories import make_citizen_id, sample_input
from tests.faults.chaos import WorkerProcess, wait_until_committed
from tests.integration.bus import read_events
from tests.integration.workers import TEST_KEY

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

VISITS = "health.hospital_visit.v1"
TAPS = "transport.transit_tap.v1"
P = make_citizen_id("370102", dt.date(1951, 2, 3), 41)  # pensioner with a hospital visit
Q = make_citizen_id("370103", dt.date(1953, 4, 5), 42)  # pensioner reminded by the tick
TICK = dt.date(2026, 5, 20)
DERIVED = ["derived.pension_status.v1", "derived.fraud_alert.v1", "derived.elderly_allowance.v1"]


def ref(citizen_id: str) -> str:
    return Pseudonymizer(TEST_KEY.encode()).person_ref(citizen_id)


def _message(dataset: str, citizen_id: str, **fields: Any) -> Message:
    intake = Intake(CATALOG.get(dataset), Pseudonymizer(TEST_KEY.encode()))
    outcome = intake.from_mapping(sample_input(dataset, citizen_id, **fields))
    assert isinstance(outcome, Message), outcome
    return outcome


@dataclass(frozen=True)
class Poison:
    """A message a raw client writes, and what its dead letter must say."""

    name: str
    topic: str
    value: bytes | None
    headers: list[tuple[str, bytes]]
    reason: str
    key: bytes | None = None


def _poison() -> list[Poison]:
    visit = _message(VISITS, P, visit_id="V-POISON")
    good = visit.headers
    key = visit.key

    def header(name: str, value: bytes) -> list[tuple[str, bytes]]:
        return [(k, value if k == name else v) for k, v in good]

    death = _message("health.death_certificate.v1", P, date_of_death="2026-02-01")
    raw_id = orjson.dumps({"person_ref": P, "occurred_at": "2026-03-02T10:15:00+08:00"})
    invalid, tick = f"invalid {VISITS}", "invalid clock tick"
    on_visits = [
        ("garbage, no headers", b"\xff\xfe\x00 not an event", [], "missing header ce_id"),
        ("garbage with a good envelope", b"\xff{{not json", good, invalid),
        ("ce_type not UTF-8", visit.value, header("ce_type", b"\xff\xfe"), "not UTF-8"),
        ("CloudEvents 2.0", visit.value, header("ce_specversion", b"2.0"), "ce_specversion"),
        ("unknown ce_type", visit.value, header("ce_type", b"evil.v1"), "unknown ce_type"),
        ("tombstone", None, good, "tombstone"),
        ("a raw ID number as person_ref", raw_id, good, invalid),
        ("nearly a megabyte", b"x" * 900_000, good, invalid),
    ]
    on_clock = [
        ("tick: bytes", b"\x00\x01\x02"),
        ("tick: no such day", b'{"as_of":"2026-13-45"}'),
        ("tick: extra field", b'{"as_of":"2026-05-20","x":1}'),
        ("tick: tombstone", None),
        ("tick: an array", b"[]"),
    ]
    return [
        *(Poison(name, VISITS, value, headers, reason, key) for name, value, headers, reason
          in on_visits),
        Poison("a death certificate forged into the transit topic", TAPS, death.value,
               death.headers, "belong on its own topic", key),
        *(Poison(name, CLOCK.topic, value, [], tick, b"tick") for name, value in on_clock),
    ]  # fmt: skip


async def _write(settings: Settings, poison: list[Poison], partition: int) -> dict[str, str]:
    """Write the poison (clock poison on ``partition``); returns each one's position."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        where = {}
        for item in poison:
            target = partition if item.topic == CLOCK.topic else None
            sent = await producer.send_and_wait(
                item.topic, item.value, key=item.key, headers=item.headers, partition=target
            )
            where[f"{item.topic}[{sent.partition}]@{sent.offset}"] = item.name
        return where
    finally:
        await producer.stop()


async def _publish_good_events(settings: Settings) -> None:
    records = [
        ("hrss.pensioner.v1", sample_input("hrss.pensioner.v1", P, benefit_start="2025-07-10",
                                           occurred_at="2026-01-05T09:00:00+08:00")),
        ("hrss.pensioner.v1", sample_input("hrss.pensioner.v1", Q, benefit_start="2025-06-15",
                                           occurred_at="2026-01-05T09:00:00+08:00",
                                           pensioner_account="PA-2")),
        (VISITS, sample_input(VISITS, P, occurred_at="2026-03-02T10:15:00+08:00")),
    ]  # fmt: skip
    async with Publisher(settings) as publisher:
        for dataset, record in records:
            assert isinstance(await publisher.publish(dataset, record), Message)
    await publish_ticks(settings, TICK)


async def _ends(settings: Settings) -> dict[TopicPartition, int]:
    topics = [d.topic for d in CATALOG.sources()] + [CLOCK.topic]
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(settings.partitions)]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        return ends
    finally:
        await consumer.stop()


async def _wait(settings: Settings, worker: WorkerProcess) -> None:
    ends = await _ends(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        await wait_until_committed(admin, ends, worker)
    finally:
        await admin.close()


@pytest.fixture
def worker(fault_bus: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(fault_bus, tmp_path / "worker", tmp_path / "worker.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_poison_is_dead_lettered_and_the_worker_goes_on(
    fault_bus: Settings, worker: WorkerProcess
) -> None:
    poison = _poison()
    clock_partition = 1
    where = asyncio.run(_write(fault_bus, poison, clock_partition))
    asyncio.run(_publish_good_events(fault_bus))
    asyncio.run(_wait(fault_bus, worker))
    assert worker.alive(), worker.log_tail()

    dead = [
        e.record
        for e in asyncio.run(read_events(fault_bus, ["dlq.rejected.v1"], idle=2))
        if isinstance(e.record, Rejected) and e.record.agency == "databus-worker"
    ]
    by_source = {letter.source: letter for letter in dead}
    assert set(by_source) == set(where), "one dead letter per poison message, by position"
    reasons = {item.name: item.reason for item in poison}
    for source, name in where.items():
        letter = by_source[source]
        assert reasons[name] in letter.reasons[0].message, (name, letter.reasons)
        assert not ID_LIKE.search(letter.raw), name
        assert P not in letter.raw
        assert len(letter.raw) <= 4096, name

    decisions = asyncio.run(read_events(fault_bus, DERIVED, idle=2))
    facts: set[tuple[object, ...]] = set()
    for event in decisions:
        record = event.record
        assert isinstance(record, PensionStatus | FraudAlert | ElderlyAllowance)
        if isinstance(record, PensionStatus):
            facts.add((record.person_ref, record.decision, record.as_of, record.qualified_until))
        else:
            facts.add((record.person_ref, type(record).__name__))
    assert facts == {
        (ref(P), "confirmed", dt.date(2026, 3, 2), dt.date(2027, 3, 2)),
        (ref(Q), "reminder", TICK, dt.date(2026, 6, 15)),
    }
