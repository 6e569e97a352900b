"""The processor's guards: nothing stops it, and what only the bus can check is checked.

Each message that cannot be decided becomes a dead letter with its position and one
reason of a closed set; the rest of the batch is decided as if it were not there.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from databus.catalog import CATALOG, CLOCK
from databus.client.intake import Intake
from databus.identity import Pseudonymizer, pseudonym_key_id
from databus.partitioner import default_partition
from databus.rules import load_policy
from databus.streams import processor as processor_module
from databus.streams.admission import DEMO_KEY_ID, PartitionMeta, meta_key
from databus.streams.clock import tick_id, tick_value
from databus.streams.processor import DecisionProcessor, Output
from databus.wire import KEY_ID_HEADER, Encoder, Message
from tests.factories import make_citizen_id, sample_input

KEY = b"processor-guards-test-key-of-32-bytes"
PARTITIONS = 4
#: 2026-06-01T00:00Z in milliseconds: when the broker "received" the test records.
RECEIVED_MS = 1_780_272_000_000
VISITS = "health.hospital_visit.v1"
PENSIONERS = "hrss.pensioner.v1"


def _processor(**options: Any) -> tuple[DecisionProcessor, dict[bytes, bytes]]:
    store: dict[bytes, bytes] = {}
    return DecisionProcessor(store, load_policy(), PARTITIONS, **options), store


def _message(dataset: str, citizen_id: str, **fields: Any) -> Message:
    intake = Intake(CATALOG.get(dataset), Pseudonymizer(KEY))
    outcome = intake.from_json(orjson.dumps(sample_input(dataset, citizen_id, **fields)))
    assert isinstance(outcome, Message), outcome
    return outcome


def _consumed(
    message: Message,
    offset: int,
    *,
    partition: int | None = None,
    key: bytes | str | None = "own",
    key_id: str | None = "own",
    timestamp: int | None = RECEIVED_MS,
) -> Any:
    """A consumed record of ``message`` as aiokafka gives it (headers may be changed)."""
    own_key = message.key
    headers = [(k, v) for k, v in message.headers if k != KEY_ID_HEADER]
    if key_id == "own":
        key_id = pseudonym_key_id(KEY)
    if key_id is not None:
        headers.append((KEY_ID_HEADER, key_id.encode()))
    record_key = own_key if key == "own" else key
    assert own_key is not None
    return SimpleNamespace(
        topic=message.topic,
        partition=default_partition(own_key, PARTITIONS) if partition is None else partition,
        offset=offset,
        key=record_key,
        value=message.value,
        headers=headers,
        timestamp=timestamp,
    )


def _tick(as_of: dt.date, partition: int, offset: int, *, received_ms: int = RECEIVED_MS) -> Any:
    encoded = Encoder(CLOCK, "databus-clock").encode(
        tick_value(as_of), event_id=tick_id(as_of, partition)
    )
    return SimpleNamespace(
        topic=CLOCK.topic, partition=partition, offset=offset, key=None,
        value=encoded.value, headers=encoded.headers, timestamp=received_ms,
    )  # fmt: skip


def _reasons(output: Output) -> list[tuple[str, str]]:
    return [(d.reason, d.rejection.source or "") for d in output.dead_letters]


CITIZEN = make_citizen_id("370102", dt.date(1950, 5, 1), 11)
OTHER = make_citizen_id("370102", dt.date(1951, 6, 2), 12)


def _pensioner_and_visit() -> tuple[Message, Message]:
    pensioner = _message(
        PENSIONERS, CITIZEN, occurred_at="2026-01-05T09:00:00+08:00", benefit_start="2025-06-01"
    )
    visit = _message(VISITS, CITIZEN, occurred_at="2026-03-02T10:15:00+08:00")
    return pensioner, visit


def test_a_record_whose_rules_raise_is_dead_lettered_and_the_batch_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    processor, _ = _processor()
    pensioner, visit = _pensioner_and_visit()
    other = _message(PENSIONERS, OTHER, occurred_at="2026-01-05T09:00:00+08:00")
    real = processor_module.on_event
    doomed = other.key.decode() if other.key else ""

    def on_event(state: Any, observation: Any, policy: Any) -> Any:
        if observation.record.person_ref == doomed:
            raise ValueError("year 10000 is out of range")
        return real(state, observation, policy)

    monkeypatch.setattr(processor_module, "on_event", on_event)
    batch = [_consumed(pensioner, 0), _consumed(other, 1), _consumed(visit, 0)]
    output = processor.process(batch)
    assert _reasons(output) == [
        ("processing_error", f"{PENSIONERS}[{batch[1].partition}]@1"),
    ]
    message = output.dead_letters[0].rejection.reasons[0].message
    assert "ValueError: year 10000 is out of range" in message
    assert [d.record.decision for d in output.decisions] == ["confirmed"]  # type: ignore[union-attr]


def test_a_tick_that_fails_for_one_person_is_decided_for_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    processor, _ = _processor()
    first = _message(PENSIONERS, CITIZEN, occurred_at="2025-01-05T09:00:00+08:00",
                     benefit_start="2025-01-01")  # fmt: skip
    second = _message(PENSIONERS, OTHER, occurred_at="2025-01-05T09:00:00+08:00",
                      benefit_start="2025-01-01")  # fmt: skip
    records = [_consumed(first, 0), _consumed(second, 0)]
    processor.process(records)
    real = processor_module.on_tick
    doomed = first.key

    def on_tick(state: Any, as_of: dt.date, policy: Any) -> Any:
        if state.person_ref.encode() == doomed:
            raise OverflowError("date value out of range")
        return real(state, as_of, policy)

    monkeypatch.setattr(processor_module, "on_tick", on_tick)
    ticks = [_tick(dt.date(2025, 12, 20), p, 0) for p in range(PARTITIONS)]
    output = processor.process(ticks)
    assert [d.reason for d in output.dead_letters] == ["processing_error"]
    assert first.key is not None
    assert first.key.decode() in output.dead_letters[0].rejection.reasons[0].message
    assert [d.record.person_ref for d in output.decisions] == [second.key.decode()]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("case", "change", "reason"),
    [
        ("no key (a raw client)", {"key": None}, "wrong_partition"),
        ("another person's key", {"key": b"AAAAAAAAAAAAAAAAAAAAAAAAAA"}, "wrong_partition"),
        ("its key on another partition", {"partition": "other"}, "wrong_partition"),
        ("the public demo key", {"key_id": DEMO_KEY_ID}, "pseudonym_key"),
        ("another pseudonym key", {"key_id": "0123456789abcdef"}, "pseudonym_key"),
        ("dated after the broker received it", {"timestamp": 1_772_000_000_000}, "future_dated"),
    ],
)
def test_a_record_the_bus_must_refuse_is_dead_lettered(
    case: str, change: dict[str, Any], reason: str
) -> None:
    processor, _ = _processor()
    pensioner, visit = _pensioner_and_visit()
    own = default_partition(visit.key or b"", PARTITIONS)
    if change.get("partition") == "other":
        change = {"partition": (own + 1) % PARTITIONS}
    output = processor.process([_consumed(pensioner, 0), _consumed(visit, 1, **change)])
    assert [d.reason for d in output.dead_letters] == [reason], case
    assert output.decisions == [], case


def test_on_a_demo_broker_the_demo_key_and_future_days_are_accepted() -> None:
    processor, _ = _processor(demo_broker=True)
    pensioner, visit = _pensioner_and_visit()
    batch = [
        _consumed(pensioner, 0, key_id=DEMO_KEY_ID, timestamp=1_700_000_000_000),
        _consumed(visit, 1, key_id=DEMO_KEY_ID, timestamp=1_700_000_000_000),
    ]
    output = processor.process(batch)
    assert output.dead_letters == []
    assert [d.record.decision for d in output.decisions] == ["confirmed"]  # type: ignore[union-attr]


def test_the_first_key_id_is_pinned_in_the_store_and_survives_a_restart() -> None:
    processor, store = _processor()
    pensioner, visit = _pensioner_and_visit()
    processor.process([_consumed(pensioner, 0)])
    partition = default_partition(pensioner.key or b"", PARTITIONS)
    meta = PartitionMeta.from_bytes(store[meta_key(partition, PARTITIONS)])
    assert meta.key_id == pseudonym_key_id(KEY)
    restarted = DecisionProcessor(store, load_policy(), PARTITIONS)
    output = restarted.process([_consumed(visit, 1, key_id="fedcba9876543210")])
    assert [d.reason for d in output.dead_letters] == ["pseudonym_key"]


def test_records_without_a_key_id_are_decided() -> None:
    processor, _ = _processor()
    pensioner, visit = _pensioner_and_visit()
    batch = [_consumed(pensioner, 0, key_id=None), _consumed(visit, 1, key_id=None)]
    output = processor.process(batch)
    assert output.dead_letters == []
    assert len(output.decisions) == 1


def test_reserved_keys_are_no_persons() -> None:
    """The partition meta lives in the store beside the persons: a tick's due index
    must not try to read it as a person."""
    processor, store = _processor()
    pensioner, _ = _pensioner_and_visit()
    processor.process([_consumed(pensioner, 0)])
    fresh = DecisionProcessor(store, load_policy(), PARTITIONS)
    output = fresh.process([_tick(dt.date(2026, 5, 20), p, 0) for p in range(PARTITIONS)])
    assert output.dead_letters == []
    assert output.tick_kinds == {"first": PARTITIONS}


@pytest.mark.parametrize(
    ("days", "kinds"),
    [
        ("first tick", [("2026-05-01", "first")]),
        ("the next days", [("2026-05-01", "first"), ("2026-05-02", "next_day"),
                           ("2026-05-09", "next_day")]),
        ("a repeat", [("2026-05-01", "first"), ("2026-05-01", "same_day")]),
        ("a week and a day later", [("2026-05-01", "first"), ("2026-05-09", "gap")]),
        ("an earlier day", [("2026-05-02", "first"), ("2026-05-01", "backwards")]),
        ("after tomorrow", [("2026-06-03", "future")]),
    ],
)  # fmt: skip
def test_ticks_are_classified_against_the_partitions_previous_tick(
    days: str, kinds: list[tuple[str, str]]
) -> None:
    processor, _ = _processor()
    seen = []
    for offset, (day, _) in enumerate(kinds):
        output = processor.process([_tick(dt.date.fromisoformat(day), 0, offset)])
        seen += list(output.tick_kinds.elements())
    assert seen == [kind for _, kind in kinds], days


def test_a_backwards_tick_decides_nothing() -> None:
    processor, _ = _processor()
    pensioner = _message(PENSIONERS, CITIZEN, occurred_at="2025-01-05T09:00:00+08:00",
                         benefit_start="2025-01-01")  # fmt: skip
    partition = default_partition(pensioner.key or b"", PARTITIONS)
    processor.process([_consumed(pensioner, 0)])
    processor.process([_tick(dt.date(2025, 11, 1), partition, 0)])
    output = processor.process([_tick(dt.date(2025, 12, 20), partition, 1)])
    assert output.tick_kinds == {"gap": 1}
    assert [d.record.decision for d in output.decisions] == ["reminder"]  # type: ignore[union-attr]
    later = processor.process([_tick(dt.date(2025, 12, 10), partition, 2)])
    assert later.tick_kinds == {"backwards": 1}
    assert later.decisions == []
