"""CloudEvents binary mode round trips and decode failures; reasons that name only the
dataset's fields and kinds from a closed set."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import orjson
import pytest
from pydantic import ValidationError

from databus import records as r
from databus.catalog import CATALOG
from databus.errors import DecodeError
from databus.records.dlq import REASON_KINDS, Reason, kind_of
from databus.wire import KEY_ID_HEADER, decode, encode_record, reasons_from

REF = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass
class FakeMessage:
    """Stands in for aiokafka's ConsumerRecord (the decoder only reads attributes)."""

    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    key: bytes | None = None
    topic: str = "t"
    partition: int = 3
    offset: int = 42


SAMPLES = [
    r.HospitalVisit(
        person_ref=REF,
        occurred_at=dt.datetime(2026, 3, 2, 10, 15, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        visit_id="V1",
        hospital_code="H1",
        visit_type="emergency",
        identity_verified=False,
    ),
    r.ClockTick(as_of=dt.date(2026, 2, 28)),
    r.PensionStatus(
        person_ref=REF,
        pensioner_account="PA1",
        decision="suspended",
        reason="deceased",
        as_of=dt.date(2026, 4, 30),
        qualified_until=dt.date(2027, 1, 1),
        evidence=[
            r.EvidenceRef(
                id="abc",
                dataset="health.death_certificate.v1",
                occurred_at=dt.datetime(2026, 4, 30, 8, tzinfo=dt.UTC),
            )
        ],
        date_of_death=dt.date(2026, 4, 29),
        rule_version="pension/1",
    ),
]
NAMES = ["health.hospital_visit.v1", "system.clock.v1", "derived.pension_status.v1"]


@pytest.mark.parametrize(("name", "record"), list(zip(NAMES, SAMPLES, strict=True)))
def test_round_trip(name: str, record: r.Record) -> None:
    dataset = CATALOG.get(name)
    message = encode_record(dataset, record, source="test")
    headers = dict(message.headers)
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_type"] == name.encode()
    assert headers["content-type"] == b"application/json"
    assert headers["ce_dataschema"] == dataset.dataschema.encode()
    if dataset.person_keyed:
        assert message.key == REF.encode()
        assert headers["ce_subject"] == REF.encode()
    event = decode(FakeMessage(message.value, message.headers, message.key))
    assert event.record == record
    assert event.envelope.id == message.id
    assert (event.partition, event.offset) == (3, 42)


def test_ids_are_deterministic() -> None:
    dataset = CATALOG.get(NAMES[0])
    assert encode_record(dataset, SAMPLES[0], source="a").id == (
        encode_record(dataset, SAMPLES[0], source="a").id
    )


def _good_headers() -> list[tuple[str, bytes]]:
    return encode_record(CATALOG.get(NAMES[1]), SAMPLES[1], source="t").headers


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (b'{"as_of":"2026-01-01"}', [], "missing header ce_id"),
        (b"not json", _good_headers(), "invalid system.clock.v1"),
        (b'{"as_of":"someday"}', _good_headers(), "as_of"),
        (None, _good_headers(), "tombstone"),
        (
            b'{"as_of":"2026-01-01"}',
            [(k, b"nope.v9" if k == "ce_type" else v) for k, v in _good_headers()],
            "unknown ce_type",
        ),
    ],
)
def test_undecodable_messages_name_their_position(
    value: bytes | None, headers: list[tuple[str, bytes]], reason: str
) -> None:
    with pytest.raises(DecodeError, match=reason) as caught:
        decode(FakeMessage(value, headers, topic="system.clock.v1"))
    assert "system.clock.v1[3]@42" in str(caught.value)


def test_a_record_whose_type_belongs_on_another_topic_is_refused() -> None:
    """A writer of the transit topic cannot pass a hospital visit off as its own."""
    message = encode_record(CATALOG.get(NAMES[0]), SAMPLES[0], source="transport")
    with pytest.raises(DecodeError, match="belong on its own topic") as caught:
        decode(FakeMessage(message.value, message.headers, topic="transport.transit_tap.v1"))
    assert f"ce_type {NAMES[0]} on topic transport.transit_tap.v1" in str(caught.value)


def test_event_json_has_envelope_position_and_data() -> None:
    message = encode_record(CATALOG.get(NAMES[0]), SAMPLES[0], source="health")
    shown = decode(FakeMessage(message.value, message.headers)).to_json_dict()
    assert shown["type"] == NAMES[0]
    assert shown["source"] == "health"
    assert shown["subject"] == REF
    assert shown["data"] == orjson.loads(message.value)
    assert {"partition", "offset", "id", "time", "specversion"} <= set(shown)


OTHER_ID = "440524188001010014"


def test_the_encoder_puts_the_key_id_into_every_message() -> None:
    dataset = CATALOG.get(NAMES[0])
    message = encode_record(dataset, SAMPLES[0], source="health", key_id="0123456789abcdef")
    assert dict(message.headers)[KEY_ID_HEADER] == b"0123456789abcdef"
    event = decode(FakeMessage(message.value, message.headers, message.key))
    assert event.envelope.keyid == "0123456789abcdef"
    without = encode_record(dataset, SAMPLES[0], source="health")
    assert KEY_ID_HEADER not in dict(without.headers)
    assert "keyid" not in decode(FakeMessage(without.value, without.headers)).to_json_dict()


def test_a_header_value_shaped_like_an_id_number_is_masked_in_the_error() -> None:
    forged = [(k, OTHER_ID.encode() if k == "ce_type" else v) for k, v in _good_headers()]
    with pytest.raises(DecodeError, match="unknown ce_type '440524") as caught:
        decode(FakeMessage(b'{"as_of":"2026-01-01"}', forged, topic="system.clock.v1"))
    assert OTHER_ID not in str(caught.value)


def test_a_forged_record_names_only_the_datasets_fields() -> None:
    """A raw client's unknown keys, also inside nested evidence, are never repeated."""
    message = encode_record(CATALOG.get(NAMES[2]), SAMPLES[2], source="databus")
    data = orjson.loads(message.value)
    data[OTHER_ID] = 1
    data["evidence"][0][OTHER_ID] = 2
    data["evidence"][0]["dataset"] = 3
    with pytest.raises(DecodeError) as caught:
        decode(FakeMessage(orjson.dumps(data), message.headers, topic=NAMES[2]))
    text = str(caught.value)
    assert OTHER_ID not in text
    assert "evidence.0.$extra:" in text
    assert "evidence.0.dataset:" in text
    assert "$extra: a key that is not a field of this dataset" in text


def test_reasons_of_a_validation_error_have_bounded_codes() -> None:
    model = CATALOG.get(NAMES[0]).bus_model
    with pytest.raises(ValidationError) as caught:
        model.model_validate({OTHER_ID: 1, "other": 2, "visit_type": "x", "occurred_at": []})
    reasons = reasons_from(caught.value, model)
    codes = [reason.code for reason in reasons]
    assert codes.count("$extra:extra_forbidden") == 1
    assert "visit_type:literal_error" in codes
    assert "occurred_at:type_error" in codes
    assert "person_ref:missing" in codes
    assert all(kind_of_code(code) in REASON_KINDS for code in codes)
    assert "2 keys that are not fields of this dataset" in str(reasons)


def kind_of_code(code: str) -> str:
    return code.partition(":")[2]


@pytest.mark.parametrize(
    ("error_type", "kind"),
    [
        ("missing", "missing"), ("extra_forbidden", "extra_forbidden"),
        ("json_invalid", "json_invalid"), ("int_parsing", "type_error"),
        ("string_type", "type_error"), ("datetime_parsing", "format_error"),
        ("timezone_aware", "format_error"), ("less_than_equal", "out_of_range"),
        ("string_too_long", "out_of_range"), ("literal_error", "literal_error"),
        ("enum", "literal_error"), ("string_pattern_mismatch", "pattern_mismatch"),
        ("value_error", "value_error"), ("record_check", "record_check"),
        ("union_tag_invalid", "invalid"), ("370102194912310020", "invalid"),
    ],
)  # fmt: skip
def test_pydantic_error_types_map_onto_the_closed_set_of_kinds(error_type: str, kind: str) -> None:
    assert kind_of(error_type) == kind
    assert Reason.of("x", "m", error_type).code == f"x:{kind}"
