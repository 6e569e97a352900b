"""Publish → Kafka → subscribe, for every dataset, through the SDKs and the CLI; the
pseudonym key's id on every message, the demo key refused by a real bus, nothing dated
after the publisher's clock."""

from __future__ import annotations

import datetime as dt
import os
import random
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from databus import records as r
from databus.catalog import CATALOG
from databus.client.publisher import Publisher
from databus.errors import ConfigurationError
from databus.identity import Pseudonymizer, pseudonym_key_id
from databus.records.audit import OperationAudit, SharingAudit
from databus.settings import Settings
from databus.wire import Message, Rejection, encode_record
from tests.factories import make_citizen_id, sample_input
from tests.integration.bus import read_events, read_records, run_cli

pytestmark = pytest.mark.integration


def _fresh_citizen_id() -> str:
    born = dt.date(1930, 1, 1) + dt.timedelta(days=random.randrange(25_000))
    return make_citizen_id("370102", born, random.randrange(1000))


def _bus_samples(ref: str) -> dict[str, BaseModel]:
    evidence = r.EvidenceRef(
        id=uuid.uuid4().hex, dataset="health.hospital_visit.v1", occurred_at=dt.datetime.now(dt.UTC)
    )
    return {
        "system.clock.v1": r.ClockTick(as_of=dt.date(2026, 2, 28)),
        "derived.pension_status.v1": r.PensionStatus(
            person_ref=ref,
            pensioner_account="PA-1",
            decision="confirmed",
            reason="evidence",
            as_of=dt.date(2026, 3, 2),
            qualified_until=dt.date(2027, 3, 2),
            evidence=[evidence],
            rule_version="pension/1",
        ),
        "derived.fraud_alert.v1": r.FraudAlert(
            person_ref=ref,
            kind="post_mortem_activity",
            date_of_death=dt.date(2026, 4, 29),
            death_evidence=evidence,
            activity=evidence,
            rule_version="pension/1",
        ),
        "derived.elderly_allowance.v1": r.ElderlyAllowance(
            person_ref=ref,
            decision="granted",
            tier="80-89",
            monthly_amount_cents=10000,
            effective_month="2026-04",
            reason="age",
            rule_version="allowance/1",
        ),
        "dlq.rejected.v1": r.Rejected(
            dataset="health.hospital_visit.v1",
            agency="health",
            raw=uuid.uuid4().hex,
            reasons=[r.Reason(field="$", message="test")],
            rejected_at=dt.datetime.now(dt.UTC),
        ),
        "audit.operations.v1": OperationAudit(
            action="clock.tick",
            outcome="done",
            principal="ANONYMOUS",
            user="test",
            host="test",
            at=dt.datetime.now(dt.UTC),
            reason=uuid.uuid4().hex,
        ),
        "audit.sharing.v1": SharingAudit(
            seq=0,
            consumer="civil",
            dataset="health.death_certificate.v1",
            share_topic="share.civil.health.death_certificate.v1",
            person_ref=ref,
            source_event_id=uuid.uuid4().hex,
            source_offset=0,
            fields=["person_ref", "date_of_death"],
            purpose="test",
            legal_basis=None,
            shared_at=dt.datetime.now(dt.UTC),
            prev_hash="0" * 64,
            hash="1" * 64,
        ),
    }


async def test_every_dataset_round_trips(bus_settings: Settings) -> None:
    pseudonymizer = Pseudonymizer(bus_settings.pseudonym_key_bytes())
    sent: dict[str, tuple[Message, str | None]] = {}
    async with Publisher(bus_settings) as publisher:
        for dataset in CATALOG.sources():
            citizen_id = _fresh_citizen_id()
            outcome = await publisher.publish(dataset.name, sample_input(dataset.name, citizen_id))
            assert isinstance(outcome, Message), outcome
            sent[dataset.name] = (outcome, pseudonymizer.person_ref(citizen_id))
    ref = pseudonymizer.person_ref(_fresh_citizen_id())
    producer = AIOKafkaProducer(bootstrap_servers=bus_settings.bootstrap_servers)
    await producer.start()
    try:
        for name, record in _bus_samples(ref).items():
            message = encode_record(CATALOG.get(name), record, source="databus")
            await producer.send_and_wait(
                message.topic, message.value, key=message.key, headers=message.headers
            )
            sent[name] = (message, ref if CATALOG.get(name).person_keyed else None)
    finally:
        await producer.stop()
    assert set(sent) == {d.name for d in CATALOG}

    events = {e.envelope.id: e for e in await read_events(bus_settings, list(sent))}
    for name, (message, person_ref) in sent.items():
        event = events[message.id]
        assert event.envelope.type == name
        assert event.record.model_dump(mode="json") == orjson.loads(message.value)
        if person_ref is not None:
            assert event.envelope.subject == person_ref
            assert event.record.model_dump()["person_ref"] == person_ref


async def test_mixed_file_counts_add_up_and_rejections_are_kept(
    bus_settings: Settings, tmp_path: Path
) -> None:
    good = [sample_input("health.hospital_visit.v1", _fresh_citizen_id()) for _ in range(3)]
    bad_check = _fresh_citizen_id()
    bad_check = bad_check[:17] + ("1" if bad_check[17] == "0" else "0")
    lines = [
        orjson.dumps(good[0]),
        orjson.dumps(sample_input("health.hospital_visit.v1", bad_check)),  # line 2
        orjson.dumps(good[1]),
        orjson.dumps(good[2] | {"visit_type": "house_call"}),  # line 4
        b'{"citizen_id": "' + _fresh_citizen_id().encode() + b'", ',  # line 5
        b"",  # line 6
        orjson.dumps({k: v for k, v in good[1].items() if k != "hospital_code"}),  # line 7
        orjson.dumps(good[2]),
    ]
    path = tmp_path / f"visits-{uuid.uuid4().hex[:8]}.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")

    result = run_cli(bus_settings, "publish", "health.hospital_visit.v1", str(path))

    assert result.returncode == 1, result.stderr
    assert "accepted 3, rejected 5" in result.stdout
    rejected_file = path.with_name(path.name + ".rejected.ndjson")
    kept = [orjson.loads(line) for line in rejected_file.read_bytes().splitlines()]
    expected = {2: "citizen_id", 4: "visit_type", 5: "$", 6: "$", 7: "hospital_code"}
    by_line = {int(item["source"].rsplit(":", 1)[1]): item for item in kept}
    assert set(by_line) == set(expected)
    for line_number, field in expected.items():
        assert field in {reason["field"] for reason in by_line[line_number]["reasons"]}
    assert bad_check not in rejected_file.read_text()
    dead = [
        e.record
        for e in await read_events(bus_settings, ["dlq.rejected.v1"])
        if isinstance(e.record, r.Rejected)
        and e.record.source
        and e.record.source.startswith(path.name + ":")
    ]
    assert sorted(d.source or "" for d in dead) == sorted(item["source"] for item in kept)
    assert [d.reasons for d in sorted(dead, key=lambda d: d.source or "")] == [
        [r.Reason.model_validate(x) for x in item["reasons"]]
        for item in sorted(kept, key=lambda i: i["source"])
    ]


async def test_subscribe_cli_prints_json_lines(bus_settings: Settings) -> None:
    citizen_id = _fresh_citizen_id()
    async with Publisher(bus_settings) as publisher:
        outcome = await publisher.publish(
            "hrss.face_authentication.v1", sample_input("hrss.face_authentication.v1", citizen_id)
        )
    assert isinstance(outcome, Message)
    result = run_cli(
        bus_settings,
        "subscribe",
        "hrss.face_authentication.v1",
        "--from-beginning",
        "--idle-timeout",
        "2",
    )
    assert result.returncode == 0, result.stderr
    shown = [orjson.loads(line) for line in result.stdout.splitlines()]
    ours = [item for item in shown if item["id"] == outcome.id]
    assert len(ours) == 1
    assert ours[0]["type"] == "hrss.face_authentication.v1"
    assert ours[0]["data"]["channel"] == "app"
    assert citizen_id not in result.stdout


async def test_group_subscriber_resumes_where_it_stopped(bus_settings: Settings) -> None:
    citizen_ids = [_fresh_citizen_id() for _ in range(5)]
    group = f"test-{uuid.uuid4().hex}"
    async with Publisher(bus_settings) as publisher:
        summary = await publisher.publish_many(
            "health.physical_exam.v1",
            [
                sample_input("health.physical_exam.v1", c, exam_id=f"E-{c[-6:]}")
                for c in citizen_ids
            ],
        )
    assert summary.accepted == 5
    first = run_cli(bus_settings, "subscribe", "health.physical_exam.v1", "--group", group,
                    "--from-beginning", "--max", "2")  # fmt: skip
    rest = run_cli(bus_settings, "subscribe", "health.physical_exam.v1", "--group", group,
                   "--from-beginning", "--idle-timeout", "3")  # fmt: skip
    first_ids = [orjson.loads(line)["id"] for line in first.stdout.splitlines()]
    rest_ids = [orjson.loads(line)["id"] for line in rest.stdout.splitlines()]
    assert len(first_ids) == 2
    assert not set(first_ids) & set(rest_ids)


async def test_csv_file_through_the_cli(bus_settings: Settings, tmp_path: Path) -> None:
    citizen_ids = [_fresh_citizen_id() for _ in range(3)]
    header = "citizen_id,occurred_at,card_id,mode,station_code,identity_verified"
    rows = [
        f"{citizen_ids[0]},2026-03-11T07:42:00+08:00,TC-CSV-1,rail,JNX,true",
        f"{citizen_ids[1]},2026-03-11T07:43:00+08:00,TC-CSV-2,tram,JNX,false",
        f"{citizen_ids[2]},2026-03-11T07:44:00+08:00,TC-CSV-3,bus,B-1,false",
    ]
    path = tmp_path / f"taps-{uuid.uuid4().hex[:8]}.csv"
    path.write_text("\n".join([header, *rows]) + "\n")

    result = run_cli(bus_settings, "publish", "transport.transit_tap.v1", str(path), "--progress")

    assert result.returncode == 1, result.stderr
    assert "accepted 2, rejected 1" in result.stdout
    assert f"{path.name}:3: mode:" in result.stderr
    events = await read_events(bus_settings, ["transport.transit_tap.v1"])
    cards = {e.record.model_dump()["card_id"]: e.record.model_dump() for e in events}
    assert cards["TC-CSV-1"]["identity_verified"] is True
    assert cards["TC-CSV-3"]["identity_verified"] is False
    assert "TC-CSV-2" not in cards


# --- the pseudonym key: its id on every message, the demo key only on a demo broker ---


async def test_every_message_the_publisher_makes_carries_the_key_id(
    bus_settings: Settings,
) -> None:
    """One record, a batch and a dead letter: each carries ce_keyid, never the key."""
    key = bus_settings.pseudonym_key_bytes()
    dataset = "health.physical_exam.v1"
    records = [sample_input(dataset, _fresh_citizen_id(), exam_id=f"E-{n}") for n in range(3)]
    async with Publisher(bus_settings) as publisher:
        single = await publisher.publish(dataset, records[0])
        dead = await publisher.publish(dataset, records[0] | {"exam_id": ""})
        summary = await publisher.publish_many(dataset, records[1:])
        batch = [publisher.check(dataset, record) for record in records[1:]]
    assert all(isinstance(message, Message) for message in batch)
    assert isinstance(single, Message)
    assert isinstance(dead, Rejection)
    assert summary.accepted == 2
    letter = dead.to_message(source=dead.agency, key_id=publisher.key_id)
    ids = {single.id, letter.id} | {m.id for m in batch if isinstance(m, Message)}
    messages = await read_records(bus_settings, [CATALOG.get(dataset).topic, "dlq.rejected.v1"])
    ours = {
        headers["ce_id"].decode(): headers
        for headers in (dict(m.headers) for m in messages)
        if headers.get("ce_id", b"").decode() in ids
    }
    assert set(ours) == ids
    for headers in ours.values():
        assert headers["ce_keyid"] == pseudonym_key_id(key).encode()
    for message in messages:
        assert key not in (message.value or b"") + b"".join(v for _, v in message.headers)


def _cli(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "databus", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False, cwd=cwd,
    )  # fmt: skip


def _env(settings: Settings, **values: str) -> dict[str, str]:
    base = {
        k: v for k, v in os.environ.items() if k not in {"DATABUS_DEMO", "DATABUS_PSEUDONYM_KEY"}
    }
    return base | {
        "DATABUS_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "DATABUS_PARTITIONS": str(settings.partitions),
        **values,
    }


def _one_visit(tmp_path: Path) -> Path:
    path = tmp_path / f"visit-{uuid.uuid4().hex[:8]}.ndjson"
    path.write_bytes(orjson.dumps(sample_input("health.hospital_visit.v1", _fresh_citizen_id())))
    return path


@pytest.mark.parametrize("asked_by", ["--demo", "DATABUS_DEMO", "databus.toml"])
def test_the_demo_key_is_refused_by_a_broker_that_is_not_a_demo_broker(
    bus_settings: Settings, tmp_path: Path, asked_by: str
) -> None:
    """No flag, variable or stray config file makes a real bus take the public key."""
    path = _one_visit(tmp_path)
    env, args = _env(bus_settings), ["publish", "health.hospital_visit.v1", str(path)]
    if asked_by == "--demo":
        args = ["--demo", *args]
    elif asked_by == "DATABUS_DEMO":
        env["DATABUS_DEMO"] = "1"
    else:
        (tmp_path / "databus.toml").write_text("demo = true\n")
    result = _cli(env, *args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("error: the public demo pseudonym key works only against a demo broker")
    assert bus_settings.bootstrap_servers in line


async def test_the_sdk_refuses_the_demo_key_on_a_real_bus(bus_settings: Settings) -> None:
    demo = bus_settings.model_copy(update={"pseudonym_key": None, "demo": True})
    publisher = Publisher(demo)
    with pytest.raises(ConfigurationError, match="works only against a demo broker"):
        await publisher.start()


def test_a_key_and_the_demo_at_once_are_refused(bus_settings: Settings, tmp_path: Path) -> None:
    env = _env(bus_settings, DATABUS_PSEUDONYM_KEY="a-real-key-of-at-least-thirty-two-bytes")
    result = _cli(env, "--demo", "publish", "health.hospital_visit.v1", str(_one_visit(tmp_path)))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: set either DATABUS_PSEUDONYM_KEY or DATABUS_DEMO, not both: the demo key "
        "and a real key make different pseudonyms for the same person"
    )


def test_a_short_key_is_refused(bus_settings: Settings, tmp_path: Path) -> None:
    env = _env(bus_settings, DATABUS_PSEUDONYM_KEY="short-secret")
    result = _cli(env, "publish", "health.hospital_visit.v1", str(_one_visit(tmp_path)))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: DATABUS_PSEUDONYM_KEY is 12 bytes; a pseudonym key must be")
    assert "short-secret" not in line


# --- time: nothing dated after the publisher's clock --------------------------------


async def test_a_record_dated_after_the_publishers_clock_is_dead_lettered(
    bus_settings: Settings,
) -> None:
    now = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
    dataset = "hrss.face_authentication.v1"
    soon = sample_input(dataset, _fresh_citizen_id(), occurred_at="2025-06-01T12:04:00Z")
    later = sample_input(dataset, _fresh_citizen_id(), occurred_at="2025-06-01T12:06:00Z")
    async with Publisher(bus_settings, clock=lambda: now) as publisher:
        assert not publisher.demo_broker
        accepted = await publisher.publish(dataset, soon)
        refused = await publisher.publish(dataset, later)
    assert isinstance(accepted, Message)
    assert isinstance(refused, Rejection)
    assert [str(reason) for reason in refused.reasons] == [
        "occurred_at: is in the future (later than now + 5 minutes)"
    ]
    letters = await read_events(bus_settings, ["dlq.rejected.v1"])
    assert any(
        isinstance(e.record, r.Rejected)
        and [str(reason) for reason in e.record.reasons] == [str(x) for x in refused.reasons]
        and str(later["citizen_id"])[:6] in e.record.raw
        and e.record.rejected_at == refused.rejected_at
        for e in letters
    )
