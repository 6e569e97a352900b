"""No record stops the bus: every date field of every dataset, fuzzed at both layers.

The issue's finding: a valid-looking `health.hospital_visit.v1` dated 9999-12-31 was
accepted by the publisher and then killed the worker (``year 10000 is out of range``) on
every restart. The contract now bounds every date and instant, and the worker turns any
failure into a dead letter; these properties check both, with hypothesis:

* through the publisher, every date field of every source dataset takes any value a
  JSON document can carry: the publisher accepts or rejects it (naming the field), and
  what it accepts the worker decides — through ticks up to the contract's last day —
  without a single processing error;
* as a raw Kafka client would write it (bus form, right envelope, right partition), the
  same values reach the worker directly: it decides or dead-letters them as undecodable
  or future-dated, never with a processing error;
* any message at all (random topics, keys, headers and values) leaves the worker
  running, and every message is accounted for: decided, or dead-lettered with a reason.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from databus.catalog import CATALOG, CLOCK, Dataset
from databus.client.intake import Intake
from databus.identity import Pseudonymizer
from databus.partitioner import default_partition
from databus.records.base import LATEST
from databus.rules import load_policy
from databus.streams.clock import tick_id, tick_value
from databus.streams.processor import DecisionProcessor, Output
from databus.wire import Encoder, Message, Rejection
from tests.factories import make_citizen_id, sample_input

pytestmark = pytest.mark.faults

KEY = b"record-fuzz-test-key-of-at-least-32-bytes"
PARTITIONS = 3
NOW_MS = 1_780_272_000_000  # 2026-06-01T00:00Z: when the broker "received" each record
CITIZEN = make_citizen_id("370102", dt.date(1940, 3, 4), 21)
SOURCES = [d for d in CATALOG.sources() if d.input_model is not None]
TICK_DAYS = [dt.date(2026, 6, 1), dt.date(2027, 6, 2), dt.date(2120, 1, 1), LATEST]
FUZZ = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)


def _is_temporal(schema: dict[str, Any]) -> bool:
    if schema.get("format") in ("date", "date-time"):
        return True
    return any(_is_temporal(option) for option in schema.get("anyOf", ()))


def _date_fields(dataset: Dataset) -> list[str]:
    """The fields of the agency's form that hold a date or an instant (its JSON Schema)."""
    model = dataset.input_model
    assert model is not None
    properties = model.model_json_schema()["properties"]
    return [name for name, schema in properties.items() if _is_temporal(schema)]


CASES = [(dataset.name, name) for dataset in SOURCES for name in _date_fields(dataset)]

_offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
_edges = st.sampled_from(
    [
        "9999-12-31T23:59:59+08:00", "0001-01-01T00:00+08:00", "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00", "1899-12-31T23:59:59+08:00", "2200-01-01T00:00:00+08:00",
        "9999-12-31", "0001-01-01", "1900-01-01", "2199-12-31", "2200-01-01", "2026-02-30",
        "", "yesterday", "2026-06-01T00:00:00", "2026-06-01T00:04:00Z", "2026-06-01T00:06:00Z",
    ]
)  # fmt: skip
#: Anything a date field of a JSON document can hold: dates, instants in any offset,
#: boundary strings, and other JSON values.
TEMPORAL = st.one_of(
    st.dates().map(dt.date.isoformat),
    st.datetimes(timezones=_offsets).map(dt.datetime.isoformat),
    _edges,
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
)


def _processor() -> DecisionProcessor:
    return DecisionProcessor({}, load_policy(), PARTITIONS)


def _consumed(message: Message, offset: int = 0) -> Any:
    assert message.key is not None
    return SimpleNamespace(
        topic=message.topic, partition=default_partition(message.key, PARTITIONS),
        offset=offset, key=message.key, value=message.value, headers=message.headers,
        timestamp=NOW_MS,
    )  # fmt: skip


def _ticks(offset: int) -> list[Any]:
    ticks = []
    for n, day in enumerate(TICK_DAYS):
        for partition in range(PARTITIONS):
            encoded = Encoder(CLOCK, "databus-clock").encode(
                tick_value(day), event_id=tick_id(day, partition)
            )
            ticks.append(
                SimpleNamespace(
                    topic=CLOCK.topic, partition=partition, offset=offset + n, key=None,
                    value=encoded.value, headers=encoded.headers, timestamp=NOW_MS,
                )
            )  # fmt: skip
    return ticks


def _no_processing_error(output: Output) -> None:
    errors = [d.rejection.summary() for d in output.dead_letters if d.reason == "processing_error"]
    assert errors == []


def _valid_message(dataset: str) -> Message:
    intake = Intake(CATALOG.get(dataset), Pseudonymizer(KEY))
    outcome = intake.from_json(orjson.dumps(sample_input(dataset, CITIZEN)))
    assert isinstance(outcome, Message), outcome
    return outcome


@pytest.mark.parametrize(("dataset", "field"), CASES)
@FUZZ
@given(value=TEMPORAL)
def test_the_publisher_rejects_or_the_worker_decides(dataset: str, field: str, value: Any) -> None:
    intake = Intake(CATALOG.get(dataset), Pseudonymizer(KEY))
    record = sample_input(dataset, CITIZEN) | {field: value}
    outcome = intake.from_json(orjson.dumps(record))
    if isinstance(outcome, Rejection):
        assert outcome.reasons
        return
    processor = _processor()
    # The person is known to every rule first: a pensioner, a resident.
    context = [_valid_message("hrss.pensioner.v1"), _valid_message("police.household.v1")]
    batch = [_consumed(message, n) for n, message in enumerate(context)]
    output = processor.process([*batch, _consumed(outcome, len(batch))])
    _no_processing_error(output)
    _no_processing_error(processor.process(_ticks(10)))


@pytest.mark.parametrize(("dataset", "field"), CASES)
@FUZZ
@given(value=TEMPORAL)
def test_a_raw_client_cannot_stop_the_worker(dataset: str, field: str, value: Any) -> None:
    good = _valid_message(dataset)
    data = orjson.loads(good.value) | {field: value}
    assert good.key is not None
    forged = Encoder(CATALOG.get(dataset), CATALOG.get(dataset).owner).encode(
        data, subject=good.key.decode()
    )
    processor = _processor()
    context = [_valid_message("hrss.pensioner.v1"), _valid_message("police.household.v1")]
    output = processor.process([_consumed(m, n) for n, m in enumerate([*context, forged])])
    _no_processing_error(output)
    assert {d.reason for d in output.dead_letters} <= {"undecodable", "future_dated"}
    _no_processing_error(processor.process(_ticks(10)))


_TOPICS = st.sampled_from([*(d.topic for d in SOURCES), CLOCK.topic])
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def _messages(draw: st.DrawFn) -> Any:
    topic = draw(_TOPICS)
    dataset = CATALOG.get(topic)
    template = _valid_message(topic) if dataset.input_model is not None else None
    value = draw(
        st.one_of(
            st.none(),
            st.binary(max_size=64),
            _JSON.map(orjson.dumps),
            st.just(template.value) if template else st.just(b'{"as_of":"2026-06-01"}'),
        )
    )
    headers = draw(
        st.one_of(
            st.just(list(template.headers) if template else []),
            st.lists(st.tuples(st.sampled_from(["ce_id", "ce_type", "ce_specversion",
                                                "ce_source", "ce_keyid", "x"]),
                               st.binary(max_size=16)), max_size=6),
        )
    )  # fmt: skip
    key = draw(
        st.one_of(st.none(), st.binary(max_size=30), st.just(template.key if template else None))
    )
    return SimpleNamespace(
        topic=topic, partition=draw(st.integers(0, PARTITIONS - 1)), offset=draw(st.integers(0, 9)),
        key=key, value=value, headers=headers,
        timestamp=draw(st.one_of(st.none(), st.integers(0, 10**13))),
    )  # fmt: skip


@FUZZ
@given(st.lists(_messages(), min_size=1, max_size=8))
def test_no_message_stops_the_worker_and_every_one_is_accounted_for(messages: list[Any]) -> None:
    processor = _processor()
    output = processor.process(messages)
    _no_processing_error(output)
    sources = sum(1 for m in messages if m.topic != CLOCK.topic)
    decided = sum(output.events_in.values())
    letters = [d for d in output.dead_letters if not d.rejection.dataset == CLOCK.topic]
    assert decided + len(letters) == sources
    ticks = len(messages) - sources
    clock_letters = len(output.dead_letters) - len(letters)
    assert output.ticks + clock_letters == ticks
    for letter in output.dead_letters:
        assert letter.rejection.source is not None
        assert letter.rejection.source.startswith(f"{letter.rejection.dataset}[")
