"""From agency input to message or rejection, and reading files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pytest

from databus.catalog import CATALOG
from databus.client.files import read_lines
from databus.client.intake import Intake
from databus.errors import CatalogError
from databus.identity import Pseudonymizer
from databus.wire import Message, Rejection, decode
from tests.factories import make_citizen_id
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
        (orjson.dumps(GOOD | {"extra": 1}), "extra"),
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

    from databus.client.batching import murmur2  # noqa: PLC0415

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
