"""The projector: exactly the granted fields, an audit record per share, nothing for an
expired grant, dead letters for what cannot be read."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import orjson

from databus.catalog import CATALOG
from databus.client.intake import Intake
from databus.governance.chain import ChainHead, StoredRecord, verify_partition
from databus.governance.grants import Grant, GrantSet
from databus.governance.projector import Projector, foreign_audit_letter
from databus.governance.views import catalog_with_views
from databus.identity import Pseudonymizer
from databus.records.audit import SharingAudit
from databus.wire import Message, decode
from tests.factories import make_citizen_id, sample_input

KEY = b"projector-test-key-at-least-32-bytes-long"
PARTITION = 2
NOW = dt.datetime(2026, 6, 1, 2, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 6, 1)
VISITS = "health.hospital_visit.v1"


def grant(consumer: str, fields: tuple[str, ...], expires: dt.date) -> Grant:
    return Grant(consumer, VISITS, fields, f"{consumer}'s purpose", expires, "PIPL art. 13")


CIVIL = grant("civil", ("person_ref", "occurred_at", "visit_type"), dt.date(2030, 1, 1))
HRSS = grant("hrss", ("person_ref", "identity_verified"), dt.date(2030, 1, 1))
POLICE = grant("police", ("person_ref", "hospital_code"), dt.date(2026, 5, 31))
GRANTS = GrantSet((CIVIL, HRSS, POLICE))


def record(dataset: str, offset: int, *, value: bytes | None = None, sequence: int = 1) -> Any:
    citizen_id = make_citizen_id("370102", dt.date(1950, 5, 1), sequence)
    intake = Intake(CATALOG.get(dataset), Pseudonymizer(KEY))
    message = intake.from_json(orjson.dumps(sample_input(dataset, citizen_id)))
    assert isinstance(message, Message)
    return SimpleNamespace(
        topic=message.topic, partition=PARTITION, offset=offset, key=message.key,
        value=message.value if value is None else value, headers=message.headers,
    )  # fmt: skip


def as_consumed(message: Message, offset: int) -> Any:
    return SimpleNamespace(
        topic=message.topic, partition=PARTITION, offset=offset, key=message.key,
        value=message.value, headers=message.headers,
    )  # fmt: skip


def run(records: list[Any], head: ChainHead | None = None) -> Any:
    projector = Projector(GRANTS)
    return projector.project(records, head or ChainHead.start(PARTITION), now=NOW, today=TODAY)


def test_each_active_grant_gets_exactly_its_fields_and_an_audit_record() -> None:
    source = record(VISITS, 7)
    out = run([source])

    shares = [m for m in out.messages if m.topic.startswith("share.")]
    audits = [m for m in out.messages if m.topic == "audit.sharing.v1"]
    assert [m.topic for m in shares] == [CIVIL.share_topic, HRSS.share_topic]
    assert len(audits) == 2
    for share, granted in zip(shares, (CIVIL, HRSS), strict=True):
        assert list(orjson.loads(share.value)) == list(granted.fields)
        assert share.key == source.key
        assert dict(share.headers)["ce_id"] == dict(source.headers)["ce_id"]
        assert dict(share.headers)["ce_source"] == b"health"
        assert dict(share.headers)["ce_keyid"] == dict(source.headers)["ce_keyid"]
        assert dict(share.headers)["ce_type"] == granted.share_topic.encode()
    assert dict(out.shared) == {("civil", VISITS): 1, ("hrss", VISITS): 1}


def test_share_messages_decode_as_their_view() -> None:
    out = run([record(VISITS, 7)])
    catalog = catalog_with_views(GRANTS)
    civil = next(m for m in out.messages if m.topic == CIVIL.share_topic)
    event = decode(as_consumed(civil, 0), catalog)
    assert event.record.model_dump(mode="json")["visit_type"] == "outpatient"
    assert not hasattr(event.record, "hospital_code")


def test_nothing_flows_for_an_expired_grant() -> None:
    out = run([record(VISITS, 1), record(VISITS, 2, sequence=2)])
    assert not [m for m in out.messages if m.topic == POLICE.share_topic]
    assert dict(out.withheld) == {("police", VISITS): 2}
    audited = {orjson.loads(m.value)["consumer"] for m in out.messages if m.topic.startswith("a")}
    assert "police" not in audited


def test_audit_records_say_who_what_why_when_and_chain() -> None:
    source = record(VISITS, 7)
    out = run([source, record(VISITS, 8, sequence=2)])
    audits = [m for m in out.messages if m.topic == "audit.sharing.v1"]
    first = SharingAudit.model_validate_json(audits[0].value)
    assert first.consumer == "civil"
    assert first.dataset == VISITS
    assert first.share_topic == CIVIL.share_topic
    assert first.source_event_id == dict(source.headers)["ce_id"].decode()
    assert first.source_offset == 7
    assert first.fields == list(CIVIL.fields)
    assert first.purpose == CIVIL.purpose
    assert first.legal_basis == "PIPL art. 13"
    assert first.shared_at == NOW
    assert first.person_ref == source.key.decode()
    assert audits[0].key == source.key
    stored = [StoredRecord(PARTITION, n, m.value) for n, m in enumerate(audits)]
    assert verify_partition(PARTITION, stored).broken is None
    assert out.head.next_seq == 4


def test_the_chain_continues_from_the_head_it_is_given() -> None:
    first = run([record(VISITS, 1)])
    second = run([record(VISITS, 2, sequence=2)], head=first.head)
    audits = [m for out in (first, second) for m in out.messages if m.topic.startswith("audit")]
    stored = [StoredRecord(PARTITION, n, m.value) for n, m in enumerate(audits)]
    assert verify_partition(PARTITION, stored).records == 4


def test_datasets_nobody_receives_are_skipped() -> None:
    out = run([record("hrss.face_authentication.v1", 3)])
    assert out.messages == []
    assert out.dead_letters == []
    assert out.head == ChainHead.start(PARTITION)


def test_unreadable_records_become_dead_letters_without_raw_ids() -> None:
    citizen_id = make_citizen_id("370102", dt.date(1950, 5, 1), 9)
    bad = record(VISITS, 4, value=b'{"not": "a visit", "id": "' + citizen_id.encode() + b'"}')
    out = run([bad, record(VISITS, 5)])
    (letter,) = out.dead_letters
    assert letter.source == f"{VISITS}[{PARTITION}]@4"
    assert letter.agency == "databus-share"
    assert citizen_id not in letter.raw
    assert dict(out.shared) == {("civil", VISITS): 1, ("hrss", VISITS): 1}


def test_a_record_whose_type_is_not_its_topic_is_not_shared() -> None:
    smuggled = record("health.physical_exam.v1", 4)
    smuggled.topic = VISITS
    out = run([smuggled])
    (letter,) = out.dead_letters
    assert "ce_type health.physical_exam.v1 on topic health.hospital_visit.v1" in str(
        letter.reasons[0]
    )
    assert out.messages == []


def with_source(source: Any, ce_source: bytes) -> Any:
    headers = [(k, ce_source if k == "ce_source" else v) for k, v in source.headers]
    return SimpleNamespace(**{**vars(source), "headers": headers})


def test_a_record_whose_ce_source_is_not_its_dataset_s_owner_is_dead_lettered() -> None:
    """Only health may write health's topic, but ce_source is the writer's word: a
    record claiming to come from another agency is not passed on to consumers."""
    forged = with_source(record(VISITS, 4), b"hrss")
    out = run([forged, record(VISITS, 5, sequence=2)])
    (letter,) = out.dead_letters
    assert letter.source == f"{VISITS}[{PARTITION}]@4"
    assert str(letter.reasons[0]) == (
        "$: ce_source 'hrss' on health.hospital_visit.v1, whose records only health "
        "publishes: not shared"
    )
    assert dict(out.refused) == {(VISITS, "forged_source"): 1}
    assert dict(out.shared) == {("civil", VISITS): 1, ("hrss", VISITS): 1}
    assert all(dict(m.headers)["ce_id"] != dict(forged.headers)["ce_id"] for m in out.messages)


def test_an_id_number_in_a_forged_ce_source_reaches_no_dead_letter() -> None:
    citizen_id = make_citizen_id("370102", dt.date(1950, 5, 1), 9)
    out = run([with_source(record(VISITS, 4), citizen_id.encode())])
    (letter,) = out.dead_letters
    assert citizen_id not in str(letter.reasons[0])
    assert citizen_id not in letter.to_message(source="databus-share").value.decode()


def test_a_foreign_audit_record_is_dead_lettered_under_its_position() -> None:
    citizen_id = make_citizen_id("370102", dt.date(1950, 5, 1), 9)
    letter = foreign_audit_letter(3, 17, b"junk " + citizen_id.encode(), "not JSON")
    again = foreign_audit_letter(3, 17, b"junk " + citizen_id.encode(), "not JSON")
    assert letter.topic == "dlq.rejected.v1"
    assert letter.id == again.id, "reported again on a later takeover: the same id"
    value = orjson.loads(letter.value)
    assert value["source"] == "audit.sharing.v1[3]@17"
    assert value["dataset"] == "audit.sharing.v1"
    assert citizen_id not in letter.value.decode()
