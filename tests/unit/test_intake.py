"""From agency input to message or rejection, and reading files.

Rejections name only the dataset's fields (``$extra`` for any other key), their codes
come from a closed set, and no ID number survives in what they show."""

# ruff: noqa: RUF001 - digits of other scripts are what some of these tests are about

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pytest

from databus.catalog import CATALOG
from databus.client.files import read_lines
from databus.client.intake import Intake
from databus.errors import CatalogError
from databus.identity import Pseudonymizer, contains_id_number, normalise_text
from databus.records.dlq import REASON_KINDS
from databus.wire import KEY_ID_HEADER, Message, Rejection, decode
from tests.conftest import TEST_KEY
from tests.factories import make_citizen_id, sample_input
from tests.unit.test_wire import FakeMessage

CID = make_citizen_id(born=dt.date(1948, 3, 15), sequence=21)
GOOD = {
    "citizen_id": CID,
    "occurred_at": "2026-03-02T10:15:00+08:00",
    "visit_id": "V1",
    "hospital_code": "H1",
    "visit_type": "outpatient",
    "identity_verified": True,
}


@pytest.fixture
def intake(pseudonymizer: Pseudonymizer) -> Intake:
    return Intake(CATALOG.get("health.hospital_visit.v1"), pseudonymizer)


def test_good_line_becomes_a_pseudonymous_event(
    intake: Intake, pseudonymizer: Pseudonymizer
) -> None:
    message = intake.from_json(orjson.dumps(GOOD))
    assert isinstance(message, Message)
    ref = pseudonymizer.person_ref(CID)
    assert message.key == ref.encode()
    assert CID.encode() not in message.value + b"".join(v for _, v in message.headers)
    event = decode(FakeMessage(message.value, message.headers))
    assert event.record.model_dump()["person_ref"] == ref
    assert event.envelope.source == "health"
    assert event.envelope.time == "2026-03-02T10:15:00+08:00"


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (orjson.dumps(GOOD | {"identity_verified": "yes"}), "identity_verified"),
        (orjson.dumps(GOOD | {"citizen_id": CID[:17] + "9"}), "citizen_id"),
        (orjson.dumps({k: v for k, v in GOOD.items() if k != "visit_id"}), "visit_id"),
        (orjson.dumps(GOOD | {"extra": 1}), "$extra"),
        (b'{"citizen_id": "' + CID.encode() + b'", "occurred_at": ', "$"),
        (orjson.dumps(GOOD | {"occurred_at": "2026-03-02T10:15:00"}), "occurred_at"),
        (orjson.dumps([GOOD]), "$"),
    ],
)
def test_bad_line_is_rejected_with_field_and_masked(
    intake: Intake, line: bytes, field: str
) -> None:
    rejection = intake.from_json(line, where="line 7")
    assert isinstance(rejection, Rejection)
    assert field in {reason.field for reason in rejection.reasons}
    assert CID not in rejection.raw
    assert CID[:6] in rejection.raw
    assert rejection.source == "line 7"
    dead_letter = rejection.to_message()
    assert dead_letter.topic == "dlq.rejected.v1"
    assert CID.encode() not in dead_letter.value


def test_only_source_datasets_have_an_intake(pseudonymizer: Pseudonymizer) -> None:
    with pytest.raises(CatalogError, match="not published by agencies"):
        Intake(CATALOG.get("derived.pension_status.v1"), pseudonymizer)


def test_csv_rows_are_checked_leniently_and_every_line_counts(
    intake: Intake, tmp_path: Path
) -> None:
    path = tmp_path / "visits.csv"
    header = "citizen_id,occurred_at,visit_id,hospital_code,visit_type,identity_verified"
    good = f"{CID},2026-03-02T10:15:00+08:00,V1,H1,outpatient,true"
    rows = [header, good, f"{CID},2026-03-02T10:15:00+08:00,V1,H1", "", good + ",surplus"]
    path.write_text("\n".join(rows) + "\n")
    lines = list(read_lines(path))
    assert len(lines) == 4
    outcomes = [intake.from_line(line) for line in lines]
    assert isinstance(outcomes[0], Message)
    assert all(isinstance(o, Rejection) for o in outcomes[1:])
    assert "2 columns" not in outcomes[1].summary()  # type: ignore[union-attr]
    assert "has 4 values but the header names 6 columns" in outcomes[1].summary()  # type: ignore[union-attr]
    assert "empty line" in outcomes[2].summary()  # type: ignore[union-attr]


def test_ndjson_reader_keeps_blank_and_bom_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.ndjson"
    path.write_bytes(b'{"a":1}\n\n\xef\xbb\xbf{"a":2}\r\n{"a":3}')
    lines = list(read_lines(path))
    assert [line.number for line in lines] == [1, 2, 3, 4]
    assert [line.problem is None for line in lines] == [True, False, False, True]


def test_fast_murmur2_equals_kafkas() -> None:
    from aiokafka.partitioner import murmur2 as aiokafka_murmur2  # noqa: PLC0415

    from databus.partitioner import murmur2  # noqa: PLC0415

    # Kafka's UtilsTest vectors (signed Java ints), then aiokafka's implementation.
    vectors = {"21": -973932308, "foobar": -790332482, "abc": 479470107,
               "a-little-bit-long-string": -985981536,
               "a-little-bit-longer-string": -1486304829,
               "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971}  # fmt: skip
    for text, signed in vectors.items():
        assert murmur2(text.encode()) == signed & 0xFFFFFFFF
    for length in range(40):
        data = bytes((i * 37 + length) % 256 for i in range(length))
        assert murmur2(data) == aiokafka_murmur2(data) & 0xFFFFFFFF


VISITS = CATALOG.get("health.hospital_visit.v1")
OTHER_ID = make_citizen_id("440524", dt.date(1980, 1, 1), sequence=14)
HEADER = "citizen_id,occurred_at,visit_id,hospital_code,visit_type,identity_verified"
ROW = f"{CID},2026-03-02T10:15:00+08:00,V1,H1,outpatient,true"


def _shown(rejection: Rejection) -> str:
    """Everything a rejection shows: terminal line, dead-letter record and message."""
    return (
        rejection.summary()
        + rejection.to_record().model_dump_json()
        + (rejection.to_message().value.decode())
    )


def test_an_unknown_key_is_not_named_even_when_it_is_an_id_number(intake: Intake) -> None:
    line = orjson.dumps(GOOD | {OTHER_ID: "x", "nickname": "x"})
    rejection = intake.from_json(line)
    assert isinstance(rejection, Rejection)
    assert [(r.field, r.code) for r in rejection.reasons] == [("$extra", "$extra:extra_forbidden")]
    assert "2 keys that are not fields" in rejection.reasons[0].message
    assert "nickname" not in rejection.summary()
    assert OTHER_ID not in _shown(rejection)
    assert not contains_id_number(_shown(rejection))


def test_an_unknown_key_of_a_mapping_is_not_named(intake: Intake) -> None:
    rejection = intake.from_mapping(GOOD | {OTHER_ID: 1, 7: 2})  # type: ignore[arg-type]
    assert isinstance(rejection, Rejection)
    assert {r.code for r in rejection.reasons} == {"$extra:extra_forbidden", "$:type_error"}
    assert OTHER_ID not in _shown(rejection)


def test_five_thousand_unknown_keys_make_one_code(intake: Intake) -> None:
    codes = set()
    for n in range(5_000):
        rejection = intake.from_json(orjson.dumps(GOOD | {f"k{n}-{OTHER_ID}": n}))
        assert isinstance(rejection, Rejection)
        codes |= {reason.code for reason in rejection.reasons}
    assert codes == {"$extra:extra_forbidden"}


@pytest.mark.parametrize(
    "line",
    [
        orjson.dumps(GOOD | {"identity_verified": "yes"}),
        orjson.dumps(GOOD | {"occurred_at": "2026-03-02T10:15:00"}),
        orjson.dumps(GOOD | {"occurred_at": "1899-12-31T10:15:00+08:00"}),
        orjson.dumps(GOOD | {"visit_type": "house_call"}),
        orjson.dumps(GOOD | {"visit_id": "x" * 65}),
        orjson.dumps(GOOD | {"visit_id": 12}),
        orjson.dumps(GOOD | {"citizen_id": CID[:17] + "9"}),
        orjson.dumps({k: v for k, v in GOOD.items() if k != "visit_id"}),
        orjson.dumps([GOOD]),
        b"{",
        b'"' + OTHER_ID.encode() + b'"',
        orjson.dumps(GOOD | {"visit_id": {OTHER_ID: 1}}),
    ],
)
def test_reason_codes_come_from_a_closed_set(intake: Intake, line: bytes) -> None:
    rejection = intake.from_json(line)
    assert isinstance(rejection, Rejection)
    allowed = set(intake.columns.allowed) | {"$", "$extra"}
    for reason in rejection.reasons:
        field, _, kind = reason.code.partition(":")
        assert field in allowed, reason
        assert kind in REASON_KINDS, reason
        assert kind != "invalid", reason
    assert OTHER_ID not in _shown(rejection)


def test_an_id_number_written_with_json_escapes_is_masked_in_raw(intake: Intake) -> None:
    escaped = "".join(f"\\u{ord(c):04x}" for c in OTHER_ID)
    line = (
        orjson.dumps(GOOD | {"visit_type": "house_call"})[:-1] + f', "note": "{escaped}"}}'.encode()
    )
    rejection = intake.from_json(line)
    assert isinstance(rejection, Rejection)
    assert not contains_id_number(rejection.raw)
    assert "440524" in rejection.raw


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        pytest.param(ROW, "(is it a data row? the header row may be missing)", id="no-header"),
        pytest.param(HEADER.replace("hospital_code", OTHER_ID), "1 column not of", id="id-column"),
        pytest.param(HEADER.replace(",identity_verified", ""), "lacks identity_verified",
                     id="missing-column"),
        pytest.param(HEADER + ",nickname", "1 column not of the dataset;", id="unknown-column"),
        pytest.param(HEADER + ",visit_id", "names the column visit_id twice", id="twice"),
    ],
)  # fmt: skip
def test_a_csv_whose_header_is_not_the_datasets_columns_is_refused_whole(
    intake: Intake, tmp_path: Path, header: str, problem: str
) -> None:
    path = tmp_path / "visits.csv"
    path.write_text("\n".join([header, ROW, ROW.replace("V1", "V2")]) + "\n")
    lines = list(read_lines(path, columns=intake.columns))
    assert [line.number for line in lines] == [1, 2, 3], "the header line counts as well"
    outcomes = [intake.from_line(line) for line in lines]
    for outcome in outcomes:
        assert isinstance(outcome, Rejection)
        [reason] = outcome.reasons
        assert reason.code == "$:csv_header"
        assert "the CSV header is not the columns of health.hospital_visit.v1" in reason.message
        assert problem in reason.message
        assert "whole file is refused" in reason.message
        assert OTHER_ID not in _shown(outcome)
        assert CID not in _shown(outcome)


def test_a_csv_header_of_the_datasets_columns_in_any_order_is_read(
    intake: Intake, tmp_path: Path
) -> None:
    names = HEADER.split(",")
    path = tmp_path / "visits.csv"
    path.write_text(",".join(reversed(names)) + "\n" + ",".join(reversed(ROW.split(","))) + "\n")
    [line] = read_lines(path, columns=intake.columns)
    assert isinstance(intake.from_line(line), Message)


def test_an_optional_column_may_be_left_out_of_a_csv_header(
    pseudonymizer: Pseudonymizer, tmp_path: Path
) -> None:
    households = Intake(CATALOG.get("police.household.v1"), pseudonymizer)
    path = tmp_path / "households.csv"
    born = f"{CID[6:10]}-{CID[10:12]}-{CID[12:14]}"
    path.write_text(
        "citizen_id,occurred_at,event,birth_date,region_code\n"
        f"{CID},2026-03-02T10:15:00+08:00,registered,{born},370102\n"
    )
    [line] = read_lines(path, columns=households.columns)
    assert isinstance(households.from_line(line), Message)


NOW = dt.datetime(2026, 3, 2, 2, 10, tzinfo=dt.UTC)  # 10:10 at +08:00


def test_a_record_dated_in_the_future_is_rejected(pseudonymizer: Pseudonymizer) -> None:
    intake = Intake(VISITS, pseudonymizer, clock=lambda: NOW)
    within = intake.from_json(orjson.dumps(GOOD | {"occurred_at": "2026-03-02T10:15:00+08:00"}))
    assert isinstance(within, Message), "five minutes of clock skew are allowed"
    rejection = intake.from_json(
        orjson.dumps(GOOD | {"occurred_at": "2026-03-02T10:15:01+08:00"}), where="line 3"
    )
    assert isinstance(rejection, Rejection)
    assert [(r.field, r.code) for r in rejection.reasons] == [
        ("occurred_at", "occurred_at:future_dated")
    ]
    assert str(rejection.reasons[0]) == (
        "occurred_at: is in the future (later than now + 5 minutes)"
    )
    assert CID not in rejection.raw
    mapping = intake.from_mapping(GOOD | {"occurred_at": "2027-01-01T00:00:00+08:00"})
    assert isinstance(mapping, Rejection)
    assert mapping.reasons[0].code == "occurred_at:future_dated"


def test_future_days_pass_where_they_are_allowed(pseudonymizer: Pseudonymizer) -> None:
    """On a demo broker the publisher lets simulations publish future days."""
    intake = Intake(VISITS, pseudonymizer, clock=lambda: NOW, allow_future=True)
    later = intake.from_json(orjson.dumps(GOOD | {"occurred_at": "2030-01-01T00:00:00+08:00"}))
    assert isinstance(later, Message)


def test_every_message_carries_the_key_id_not_the_key(
    intake: Intake, pseudonymizer: Pseudonymizer
) -> None:
    message = intake.from_json(orjson.dumps(GOOD))
    assert isinstance(message, Message)
    headers = dict(message.headers)
    assert headers[KEY_ID_HEADER] == pseudonymizer.key_id.encode()
    event = decode(FakeMessage(message.value, message.headers))
    assert event.envelope.keyid == pseudonymizer.key_id
    assert event.to_json_dict()["keyid"] == pseudonymizer.key_id
    everything = message.value + b"".join(value for _, value in message.headers)
    assert TEST_KEY not in everything


@pytest.mark.parametrize(
    "disguised",
    [
        "370102 19491231 002X",
        "370102-1949-1231-002X",
        "３７０１０２１９４９１２３１００２Ｘ",
        "370102\u200b19491231002X",
        "370102\u00a019491231\u00a0002X",
        "٣٧٠١٠٢١٩٤٩١٢٣١٠٠٢X",
    ],
)
def test_a_disguised_id_number_in_a_code_field_is_rejected_and_masked(
    intake: Intake, disguised: str
) -> None:
    rejection = intake.from_json(orjson.dumps(GOOD | {"hospital_code": disguised}))
    assert isinstance(rejection, Rejection), "the record reached the bus"
    assert [r.field for r in rejection.reasons] == ["hospital_code"]
    assert not contains_id_number(_shown(rejection))
    assert "19491231" not in normalise_text(rejection.raw).replace(" ", "")


@pytest.mark.parametrize(
    ("occurred_at", "future"),
    [
        ("2026-03-01T23:00:00-23:00", True),  # the day before, but 22:00 UTC on the day
        ("2026-02-28T23:59:00-23:59", False),  # two days before: always in the past
        ("2026-03-02T00:10:00Z", False),
        ("2026-03-02T00:10:01Z", True),
        ("2026-03-03T07:00:00+14:00", True),
    ],
)
def test_the_future_is_judged_in_utc_whatever_the_offset(
    pseudonymizer: Pseudonymizer, occurred_at: str, future: bool
) -> None:
    clock = dt.datetime(2026, 3, 2, 0, 5, tzinfo=dt.UTC)
    intake = Intake(CATALOG.get("hrss.face_authentication.v1"), pseudonymizer, clock=lambda: clock)
    record = {"citizen_id": CID, "occurred_at": occurred_at, "channel": "app"}
    outcome = intake.from_json(orjson.dumps(record))
    assert isinstance(outcome, Rejection) is future, outcome


def test_a_retraction_may_carry_the_withdrawn_record_and_gets_its_id() -> None:
    """An agency withdraws a record by sending it again as it published it: the bus gets
    only the record's id (which depends on the pseudonym key), never the record."""
    key = b"retraction-intake-test-key-of-32-bytes"
    certificate = sample_input("health.death_certificate.v1", CID)
    published = Intake(CATALOG.get("health.death_certificate.v1"), Pseudonymizer(key))
    sent = published.from_mapping(certificate)
    assert isinstance(sent, Message)
    retractions = Intake(CATALOG.get("health.retraction.v1"), Pseudonymizer(key))
    base = {
        "citizen_id": CID,
        "occurred_at": "2026-03-05T09:00:00+08:00",
        "dataset": "health.death_certificate.v1",
        "reason": "issued for the wrong person",
    }
    outcome = retractions.from_json(orjson.dumps(base | {"record": certificate}))
    assert isinstance(outcome, Message), outcome
    value = orjson.loads(outcome.value)
    assert value["record_id"] == sent.id
    assert "record" not in value
    assert "citizen_id" not in outcome.value.decode()
    by_id = retractions.from_json(orjson.dumps(base | {"record_id": sent.id}))
    assert isinstance(by_id, Message)
    assert orjson.loads(by_id.value) == value

    other = make_citizen_id("370102", dt.date(1950, 1, 2), 9)
    cases = {
        "both": base | {"record": certificate, "record_id": sent.id},
        "neither": base,
        "another person's record": base | {"record": certificate | {"citizen_id": other}},
        "not a record of the dataset": base | {"record": {"certificate_no": "DC-1"}},
    }
    for case, values in cases.items():
        refused = retractions.from_json(orjson.dumps(values))
        assert isinstance(refused, Rejection), case
        assert refused.reasons[0].field in ("record", "record_id"), case
        assert other not in refused.raw, case
