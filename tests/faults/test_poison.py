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
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from databus.catalog import CATALOG, CLOCK
from databus.client.intake import Intake
from databus.client.publisher import Publisher
from databus.identity import ID_LIKE, Pseudonymizer, pseudonym_key_id
from databus.ops.processes import free_ports
from databus.partitioner import default_partition
from databus.records import ElderlyAllowance, FraudAlert, PensionStatus, Rejected
from databus.settings import Settings
from databus.streams.admission import DEMO_KEY_ID
from databus.streams.clock import publish_ticks
from databus.wire import KEY_ID_HEADER, Message
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


# --- records the contract or the bus must refuse (issue: one record stopped every decision)

R = make_citizen_id("370102", dt.date(1944, 7, 8), 43)  # pensioner, records out of bounds
STATUS = "derived.pension_status.v1"


def _forged(dataset: str, citizen_id: str, **fields: Any) -> Message:
    """A message of ``dataset`` as a raw client writes it: a valid record of the bus form
    with ``fields`` replaced, and a correct envelope."""
    good = _message(dataset, citizen_id)
    value = orjson.loads(good.value) | fields
    headers = [(k, v) for k, v in good.headers if k != KEY_ID_HEADER]
    headers.append((KEY_ID_HEADER, pseudonym_key_id(TEST_KEY.encode()).encode()))
    return Message(good.topic, good.key, orjson.dumps(value), headers, good.id)


def _refused() -> list[tuple[str, Message, dict[str, Any], str]]:
    """(what, message, how it is written, the dead letter's reason text)."""
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    visit = _forged(VISITS, R, visit_id="V-OK")
    partition = default_partition(visit.key or b"", 4)
    out_of_range = "must be between 1900-01-01 and 2199-12-31"
    with_key_id = [(k, v) for k, v in visit.headers if k != KEY_ID_HEADER]
    return [
        ("a visit in 9999", _forged(VISITS, R, occurred_at="9999-12-31T23:59:59+08:00"),
         {}, out_of_range),
        ("a visit in year 1", _forged(VISITS, R, occurred_at="0001-01-01T00:00:00+08:00"),
         {}, out_of_range),
        ("a face scan in 9999", _forged("hrss.face_authentication.v1", R,
                                         occurred_at="9999-12-31T23:59:59+08:00"),
         {}, out_of_range),
        ("a benefit starting in 9999", _forged("hrss.pensioner.v1", R, benefit_start="9999-12-31"),
         {}, out_of_range),
        ("a death in 9999", _forged("health.death_certificate.v1", R, date_of_death="9999-12-31"),
         {}, out_of_range),
        ("a move out in 9999", _forged("police.household.v1", R, event="moved_out",
                                        occurred_at="9999-12-31T23:59:59+08:00"), {}, out_of_range),
        ("a visit dated tomorrow", _forged(VISITS, R, occurred_at=tomorrow), {},
         "later than the broker received the record"),
        ("a visit without a key", visit, {"key": None, "partition": partition},
         "the message key is not the record's person_ref"),
        ("a visit on another partition", visit, {"partition": (partition + 1) % 4},
         f"its key belongs to partition {partition}"),
        ("a visit made with the demo key", visit,
         {"headers": [*with_key_id, (KEY_ID_HEADER, DEMO_KEY_ID.encode())]},
         "the public demo pseudonym key"),
        ("a visit made with another key", visit,
         {"headers": [*with_key_id, (KEY_ID_HEADER, b"0123456789abcdef")]},
         "made with pseudonym key 0123456789abcdef"),
    ]  # fmt: skip


async def _write_refused(settings: Settings) -> dict[str, tuple[str, str]]:
    """Write a good pensioner record for R (it pins the key id), then every refused one;
    returns each refused one's position → (what, reason)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        pensioner = _forged("hrss.pensioner.v1", R, occurred_at="2026-01-05T09:00:00+08:00",
                            benefit_start="2025-07-10")  # fmt: skip
        await producer.send_and_wait(
            pensioner.topic, pensioner.value, key=pensioner.key, headers=pensioner.headers
        )
        where = {}
        for what, message, how, reason in _refused():
            sent = await producer.send_and_wait(
                message.topic,
                message.value,
                key=how.get("key", message.key),
                headers=how.get("headers", message.headers),
                partition=how.get("partition"),
            )
            where[f"{message.topic}[{sent.partition}]@{sent.offset}"] = (what, reason)
        visit = _forged(VISITS, R, visit_id="V-AFTER", occurred_at="2026-03-05T10:00:00+08:00")
        await producer.send_and_wait(visit.topic, visit.value, key=visit.key, headers=visit.headers)
        return where
    finally:
        await producer.stop()


def _metric(port: int, name: str) -> dict[str, float]:
    """The samples of ``name`` on the worker's /metrics, by their ``reason`` label."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                reason = sample.labels["reason"]
                found[reason] = found.get(reason, 0.0) + sample.value
    return found


def test_records_out_of_bounds_or_misplaced_are_dead_lettered_and_survive_a_restart(
    fault_bus: Settings, tmp_path: Path
) -> None:
    port = free_ports(1)[0]
    worker = WorkerProcess(
        fault_bus, tmp_path / "worker", tmp_path / "worker.log", "--web-port", str(port)
    )
    worker.start()
    try:
        where = asyncio.run(_write_refused(fault_bus))
        asyncio.run(_wait(fault_bus, worker))
        assert worker.alive(), worker.log_tail()
        counted = _metric(port, "databus_worker_dead_letters_total")
        worker.kill()  # what died on every restart before must not now
        worker.start()
        asyncio.run(publish_ticks(fault_bus, dt.date(2026, 5, 21)))
        asyncio.run(_wait(fault_bus, worker))
        assert worker.alive(), worker.log_tail()
    finally:
        worker.stop()

    letters = {
        e.record.source: e.record
        for e in asyncio.run(read_events(fault_bus, ["dlq.rejected.v1"], idle=2))
        if isinstance(e.record, Rejected) and e.record.source in where
    }
    assert set(letters) == set(where)
    for source, (what, reason) in where.items():
        assert reason in str(letters[source].reasons[0]), (what, letters[source].reasons)
        assert R not in letters[source].raw
    assert counted.get("undecodable", 0) >= 6
    assert counted.get("future_dated", 0) >= 1
    assert counted.get("wrong_partition", 0) >= 2
    assert counted.get("pseudonym_key", 0) >= 2
    assert counted.get("processing_error", 0) == 0
    decided = [
        e.record
        for e in asyncio.run(read_events(fault_bus, [STATUS], idle=2))
        if isinstance(e.record, PensionStatus) and e.record.person_ref == ref(R)
    ]
    assert [(d.decision, d.as_of) for d in decided] == [("confirmed", dt.date(2026, 3, 5))]
