"""Wiring of the batch path: fetched records → processor → changelog rows and messages."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from faust.types import TP
from prometheus_client import REGISTRY

from databus.catalog import CATALOG
from databus.client.intake import Intake
from databus.identity import Pseudonymizer
from databus.partitioner import default_partition
from databus.rules import PersonState, load_policy
from databus.settings import Settings
from databus.streams.admission import meta_key
from databus.streams.app import DecisionEngine, EngineOptions
from databus.streams.fastpath import BatchConsumer, first_to_acknowledge
from databus.wire import Message
from tests.factories import make_citizen_id, sample_input

KEY = b"batch-path-test-key-of-at-least-32-bytes"
PARTITIONS = 4
STATUS = "derived.pension_status.v1"


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def engine(tmp_path: Any) -> DecisionEngine:
    settings = Settings(bootstrap_servers="127.0.0.1:1", partitions=PARTITIONS)
    return DecisionEngine(
        settings,
        load_policy(),
        EngineOptions(store="memory://", datadir=tmp_path, demo_broker=False),
    )


def _record(dataset: str, citizen_id: str, offset: int, **fields: Any) -> Any:
    intake = Intake(CATALOG.get(dataset), Pseudonymizer(KEY))
    message = intake.from_json(orjson.dumps(sample_input(dataset, citizen_id, **fields)))
    assert isinstance(message, Message)
    assert message.key is not None
    partition = default_partition(message.key, PARTITIONS)
    return SimpleNamespace(
        topic=message.topic, partition=partition, offset=offset, key=message.key,
        value=message.value, headers=message.headers, timestamp=1_780_272_000_000,
    )  # fmt: skip


async def test_a_fetch_is_decided_and_its_state_and_output_are_written(
    engine: DecisionEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert engine.app.batch_handler is engine
    citizen_id = make_citizen_id("370102", dt.date(1950, 5, 1), 11)
    pensioner = _record(
        "hrss.pensioner.v1", citizen_id, 0, occurred_at="2026-01-05T09:00:00+08:00",
        benefit_start="2025-06-01",
    )  # fmt: skip
    visit = _record(
        "health.hospital_visit.v1", citizen_id, 0, occurred_at="2026-03-02T10:15:00+08:00"
    )
    written: list[tuple[dict[int, list[tuple[bytes, bytes]]], dict[int, list[Message]]]] = []
    offsets_written: list[dict[int, dict[TopicPartition, int]]] = []

    async def write(changes: Any, messages: dict[int, list[Message]], offsets: Any) -> Any:
        written.append((changes, messages))
        offsets_written.append(offsets)
        return _committed()

    monkeypatch.setattr(engine._output, "write", write)
    before = _sample("databus_worker_decisions_total", dataset=STATUS, kind="confirmed")
    await (await engine.handle([pensioner, visit]))
    after = _sample("databus_worker_decisions_total", dataset=STATUS, kind="confirmed")
    assert after - before == 1

    [(changes, by_partition)] = written
    # Exactly-once: one transaction per input partition, with the input offsets read.
    assert list(by_partition) == [pensioner.partition]
    messages = by_partition[pensioner.partition]
    assert offsets_written == [
        {
            pensioner.partition: {
                TopicPartition(pensioner.topic, pensioner.partition): 1,
                TopicPartition(visit.topic, visit.partition): 1,
            }
        }
    ]
    assert [m.topic for m in messages] == ["derived.pension_status.v1"]
    assert orjson.loads(messages[0].value or b"")["decision"] == "confirmed"
    # One changelog row for the one person, in the partition of their key, and one for
    # the partition's own state (the pseudonym key id it pinned).
    assert list(changes) == [pensioner.partition]
    persons = [
        row
        for row in changes[pensioner.partition]
        if row[0] != meta_key(pensioner.partition, PARTITIONS)
    ]
    assert len(changes[pensioner.partition]) == len(persons) + 1
    [(key, value)] = persons
    assert key == pensioner.key
    assert PersonState.from_bytes(value).person_ref == key.decode()
    assert engine._direct.get(key) == value  # read back while the batch is in flight
    assert key not in engine.state.data  # but the local store has it only once delivered
    engine._direct.settle(changes)
    assert engine.state.data[key] == value


async def test_a_bad_record_in_a_fetch_becomes_a_dead_letter(
    engine: DecisionEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    citizen_id = make_citizen_id("370102", dt.date(1950, 5, 1), 12)
    good = _record("hrss.pensioner.v1", citizen_id, 1)
    bad = SimpleNamespace(**{**vars(good), "offset": 0, "value": b"\xffgarbage"})
    written: list[list[Message]] = []

    async def write(changes: Any, messages: dict[int, list[Message]], offsets: Any) -> Any:
        written.append(messages[good.partition])  # the dead letter goes with its partition
        return _committed()

    monkeypatch.setattr(engine._output, "write", write)
    before = _sample(
        "databus_worker_dead_letters_total", topic="hrss.pensioner.v1", reason="undecodable"
    )
    await (await engine.handle([bad, good]))
    assert (
        _sample(
            "databus_worker_dead_letters_total", topic="hrss.pensioner.v1", reason="undecodable"
        )
        == before + 1
    )
    [messages] = written
    assert [m.topic for m in messages] == ["dlq.rejected.v1"]
    assert f"hrss.pensioner.v1[{good.partition}]@0" in (messages[0].value or b"").decode()
    assert engine._direct.get(good.key) is not None


async def _committed() -> bool:
    return True


async def test_a_batch_whose_transaction_failed_is_not_counted(
    engine: DecisionEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It is read and decided again after the rebalance: counting it now would count twice."""
    citizen_id = make_citizen_id("370102", dt.date(1950, 5, 1), 13)
    pensioner = _record("hrss.pensioner.v1", citizen_id, 0, benefit_start="2025-06-01")
    visit = _record("health.hospital_visit.v1", citizen_id, 0)

    async def failed() -> bool:
        return False

    async def write(changes: Any, messages: Any, offsets: Any) -> Any:
        return failed()

    monkeypatch.setattr(engine._output, "write", write)
    before = _sample("databus_worker_decisions_total", dataset=STATUS, kind="confirmed")
    await (await engine.handle([pensioner, visit]))
    assert _sample("databus_worker_decisions_total", dataset=STATUS, kind="confirmed") == before


async def test_at_least_once_writes_one_list_and_acknowledges_offsets(tmp_path: Any) -> None:
    settings = Settings(bootstrap_servers="127.0.0.1:1", partitions=PARTITIONS)
    engine = DecisionEngine(
        settings,
        load_policy(),
        EngineOptions(
            store="memory://", datadir=tmp_path, demo_broker=False, guarantee="at_least_once"
        ),
    )
    assert not engine.commits_offsets
    citizen_id = make_citizen_id("370102", dt.date(1950, 5, 1), 14)
    pensioner = _record("hrss.pensioner.v1", citizen_id, 0, benefit_start="2025-06-01")
    written: list[list[Message]] = []

    async def write(changes: Any, messages: list[Message]) -> Any:
        written.append(messages)
        return asyncio.sleep(0)

    engine._output.write = write  # type: ignore[method-assign]
    await (await engine.handle([pensioner]))
    assert written == [[]]


def _consumer(committed: int | None) -> Any:
    return SimpleNamespace(
        _committed_offset=defaultdict(lambda: committed),
        _acked_index=defaultdict(set),
        _acked=defaultdict(list),
        _n_acked=0,
    )


def test_acknowledging_a_fetch_covers_gaps_and_skips_committed_offsets() -> None:
    tp = TP("hrss.pensioner.v1", 0)
    consumer = _consumer(committed=12)
    BatchConsumer._ack_range(consumer, tp, 10, 15)
    assert consumer._acked[tp] == [12, 13, 14, 15]
    BatchConsumer._ack_range(consumer, tp, 14, 17)  # overlapping: counted once
    assert consumer._acked[tp] == [12, 13, 14, 15, 16, 17]
    assert consumer._n_acked == 6


@pytest.mark.parametrize(
    ("released", "start", "first"),
    [
        (None, 5, 5),  # the partition's first release
        (4, 5, 5),  # the next record
        (3, 7, 4),  # offsets 4-6 hold no record (transaction markers): acknowledged too
        (20, 10, 10),  # the consumer went back to offset 10 (a seek): ack from there
        (10, 10, 10),  # the same record read again
    ],
)
def test_a_release_acknowledges_from_the_previous_one_unless_the_consumer_went_back(
    released: int | None, start: int, first: int
) -> None:
    assert first_to_acknowledge(released, start) == first


def test_records_read_again_after_a_seek_back_are_acknowledged_again() -> None:
    """Before: a batch released just before a rebalance was never acknowledged; read
    again from the committed offset, it was acknowledged only after the old release's
    last offset, so the partition's commit stayed below it for good (a kill test in CI
    saw a worker commit nothing for 180 s)."""
    tp = TP("health.hospital_visit.v1", 0)
    consumer = _consumer(committed=100)
    released = 149  # offsets 100-149 released; their delivery was never acknowledged
    start, last = 100, 149  # read again after the seek to the committed offset
    BatchConsumer._ack_range(consumer, tp, first_to_acknowledge(released, start), last)
    assert consumer._acked[tp] == list(range(100, 150))
