"""Sharing through a real share worker on the secure broker: exactly the granted fields,
nothing under an expired grant, an audit record per share whose chain verifies, and
tampering with a copy of the audit trail found where it happened."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from databus.catalog import CATALOG
from databus.client.intake import Intake
from databus.client.publisher import Publisher
from databus.client.subscriber import Subscriber
from databus.governance.grants import load_grants
from databus.governance.views import catalog_with_views
from databus.identity import Pseudonymizer
from databus.wire import Message
from tests.factories import make_citizen_id, sample_input
from tests.integration.secure import (
    PARTITIONS,
    TEST_KEY,
    Record,
    SecureBus,
    ShareWorker,
    mine,
    publish,
    read_topic,
    run_databus,
    values,
    wait_for_shares,
    wait_until,
)

pytestmark = pytest.mark.integration

DEATHS = "health.death_certificate.v1"
FUNERALS = "civil.funeral.v1"
AUDIT = "audit.sharing.v1"
CIVIL_DEATHS = "share.civil.health.death_certificate.v1"
HRSS_DEATHS = "share.hrss.health.death_certificate.v1"
POLICE_DEATHS = "share.police.health.death_certificate.v1"
HRSS_FUNERALS = "share.hrss.civil.funeral.v1"


@pytest.fixture(scope="module")
def worker(secure: SecureBus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShareWorker]:
    running = ShareWorker(secure, tmp_path_factory.mktemp("share-worker") / "worker.log")
    running.start()
    try:
        yield running
    finally:
        running.stop()


def citizen(sequence: int) -> str:
    return make_citizen_id("370102", dt.date(1938, 6, 1), sequence)


async def test_projections_hold_exactly_the_granted_fields(
    secure: SecureBus, worker: ShareWorker
) -> None:
    ids = [citizen(n) for n in range(601, 609)]
    sent = await publish(secure, "health", DEATHS, ids)

    civil = mine(await wait_for_shares(secure, CIVIL_DEATHS, sent), sent)
    hrss = mine(await wait_for_shares(secure, HRSS_DEATHS, sent), sent)

    grants = {g.share_topic: g for g in load_grants(secure.grants)}
    for topic, shared in ((CIVIL_DEATHS, civil), (HRSS_DEATHS, hrss)):
        assert len(shared) == len(sent), topic
        for record in shared:
            value = orjson.loads(record.value)
            assert list(value) == list(grants[topic].fields), topic
            assert record.key == value["person_ref"].encode()
            assert record.headers["ce_type"] == topic.encode()
            assert record.headers["ce_source"] == b"health"
    by_id = {m.id.encode(): m for m in sent}
    for record in civil:
        source = by_id[record.headers["ce_id"]]
        assert record.key == source.key
        assert (
            orjson.loads(record.value)["date_of_death"]
            == orjson.loads(source.value)["date_of_death"]
        )
    # The consumer reads its view with the SDK: decoded against the view's closed model.
    catalog = catalog_with_views(load_grants(secure.grants))
    async with Subscriber(
        [CIVIL_DEATHS], secure.settings("civil"), from_beginning=True, catalog=catalog
    ) as reader:
        events = [e async for e in reader.events(idle_timeout=2)]
    assert {e.envelope.id for e in events} >= {m.id for m in sent}
    assert all(not hasattr(e.record, "institution_code") for e in events)
    # Nothing in a share topic or the audit trail is a raw ID number.
    for topic in (CIVIL_DEATHS, HRSS_DEATHS, AUDIT):
        for record in await read_topic(secure.admin, topic):
            raw = record.value + (record.key or b"") + b"".join(record.headers.values())
            assert not any(i.encode() in raw for i in ids), topic
    shared = worker.metric("databus_share_records_total", consumer="civil", dataset=DEATHS)
    assert shared >= len(sent)


async def test_an_expired_grant_shares_nothing_and_expiry_stops_the_flow(
    secure: SecureBus, worker: ShareWorker
) -> None:
    before = await publish(secure, "civil", FUNERALS, [citizen(701)])
    deaths = await publish(secure, "health", DEATHS, [citizen(705)])
    assert len(mine(await wait_for_shares(secure, HRSS_FUNERALS, before), before)) == 1
    await wait_for_shares(secure, CIVIL_DEATHS, deaths)
    # The police grant expired long ago: its view never receives anything.
    assert await read_topic(secure.admin, POLICE_DEATHS) == []
    assert worker.metric("databus_share_withheld_total", consumer="police", dataset=DEATHS) > 0

    civil_yaml = secure.grants / "civil.yaml"
    original = civil_yaml.read_text()
    active = worker.metric("databus_share_grants", state="active")
    expired = dt.date.today() - dt.timedelta(days=2)  # noqa: DTZ011 - before the worker's day
    civil_yaml.write_text(original.replace("2099-12-31", expired.isoformat()))
    try:
        wait_until(
            lambda: worker.metric("databus_share_grants", state="active") == active - 1,
            "the share worker to reload the grants",
        )
        after = await publish(secure, "civil", FUNERALS, [citizen(702), citizen(703)])
        marker = await publish(secure, "health", DEATHS, [citizen(704)])  # still shared
        await wait_for_shares(secure, CIVIL_DEATHS, marker)
        wait_until(
            lambda: worker.metric(
                "databus_share_withheld_total", consumer="hrss", dataset=FUNERALS
            ) >= len(after),
            "the funerals to be withheld",
        )  # fmt: skip
        funerals = await read_topic(secure.admin, HRSS_FUNERALS)
        assert mine(funerals, after) == []
        assert len(mine(funerals, before)) == 1
    finally:
        civil_yaml.write_text(original)
        wait_until(
            lambda: worker.metric("databus_share_grants", state="active") == active,
            "the share worker to reload the restored grants",
        )


def verify(bus: SecureBus, user: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_databus(bus, user, "audit", "verify", *args)


async def test_every_share_has_an_audit_record_and_the_chain_verifies(
    secure: SecureBus, worker: ShareWorker
) -> None:
    sent = await publish(secure, "health", DEATHS, [citizen(n) for n in range(801, 805)])
    shares = mine(await wait_for_shares(secure, CIVIL_DEATHS, sent), sent)
    await wait_for_shares(secure, HRSS_DEATHS, sent)
    audit = await read_topic(secure.admin, AUDIT)
    records = [(r, orjson.loads(r.value)) for r in audit]
    for message in sent:
        audited = {v["consumer"] for _, v in records if v["source_event_id"] == message.id}
        assert audited == {"civil", "hrss"}
        ((where, civil),) = [
            (r, v)
            for r, v in records
            if v["source_event_id"] == message.id and v["consumer"] == "civil"
        ]
        (share,) = [s for s in shares if s.headers["ce_id"] == message.id.encode()]
        assert civil["dataset"] == DEATHS
        assert civil["share_topic"] == CIVIL_DEATHS
        assert civil["purpose"] == "End social assistance after a death."
        assert civil["fields"] == ["person_ref", "occurred_at", "date_of_death"]
        assert message.key is not None
        assert civil["person_ref"] == message.key.decode()
        assert dt.datetime.fromisoformat(civil["shared_at"]).tzinfo is not None
        assert where.partition == share.partition, "the chain of the source's partition"
    pairs = [(v["consumer"], v["source_event_id"]) for _, v in records]
    assert len(pairs) == len(set(pairs)), "exactly one audit record per share"

    result = verify(secure, "auditor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(audit)} records in {PARTITIONS} partitions, every chain intact" in result.stdout
    # The auditor checked each record against its share and its source.
    assert f"cross-check: {len(audit)} audit records match their share and source" in (
        result.stdout
    )
    assert "0 contradicted" in result.stdout


async def test_a_worker_killed_mid_batch_is_succeeded_exactly_once(
    secure: SecureBus, worker: ShareWorker
) -> None:
    """SIGKILL while sharing: the successor's producers fence the dead one's open
    transactions; every record is shared once, audited once, and the chains hold."""
    ids = [make_citizen_id("370102", dt.date(1936, 1, 1) + dt.timedelta(days=n), n % 900 + 1)
           for n in range(1500)]  # fmt: skip
    async with Publisher(secure.settings("health"), source="health") as publisher:
        summary = await publisher.publish_many(DEATHS, (sample_input(DEATHS, i) for i in ids))
    assert summary.accepted == len(ids)
    wait_until(
        lambda: worker.metric("databus_share_records_total", consumer="hrss", dataset=DEATHS) > 0,
        "the first shares",
    )
    worker.stop(kill=True)
    worker.start()
    async with Publisher(secure.settings("health"), source="health") as publisher:
        later = await publisher.publish(DEATHS, sample_input(DEATHS, citizen(899)))
    assert isinstance(later, Message)
    await wait_for_shares(secure, HRSS_DEATHS, [later])
    shares = await read_topic(secure.admin, HRSS_DEATHS)
    ce_ids = [r.headers["ce_id"] for r in shares]
    assert len(ce_ids) == len(set(ce_ids)), "no record shared twice"
    audit = [orjson.loads(r.value) for r in await read_topic(secure.admin, AUDIT)]
    pairs = [(v["consumer"], v["source_event_id"]) for v in audit]
    assert len(pairs) == len(set(pairs)), "no share audited twice"
    hrss_audited = {
        v["source_event_id"] for v in audit if (v["consumer"], v["dataset"]) == ("hrss", DEATHS)
    }
    assert hrss_audited == {c.decode() for c in ce_ids}, "every share audited"
    result = verify(secure, "auditor")
    assert result.returncode == 0, result.stdout + result.stderr


async def test_a_bad_source_message_is_dead_lettered_and_sharing_goes_on(
    secure: SecureBus, worker: ShareWorker
) -> None:
    bad_id = citizen(951)
    producer = AIOKafkaProducer(**secure.settings("health").kafka_client_options())
    await producer.start()
    try:
        headers = [("ce_specversion", b"1.0"), ("ce_id", b"bad-1"), ("ce_source", b"health"),
                   ("ce_type", DEATHS.encode())]  # fmt: skip
        value = b'{"citizen_id": "' + bad_id.encode() + b'", "truncated'
        await producer.send_and_wait(DEATHS, value, key=b"A" * 26, headers=headers)
    finally:
        await producer.stop()
    after = await publish(secure, "health", DEATHS, [citizen(952)])
    await wait_for_shares(secure, CIVIL_DEATHS, after)
    wait_until(lambda: bool(worker.metric("databus_share_dead_letters_total", topic=DEATHS,
                                          reason="undecodable")),
               "the dead letter")  # fmt: skip
    letters = [orjson.loads(r.value) for r in await read_topic(secure.admin, "dlq.rejected.v1")]
    (letter,) = [x for x in letters if x["agency"] == "databus-share"]
    assert letter["source"].startswith(f"{DEATHS}[")
    assert bad_id not in letter["raw"]
    assert worker.process is not None
    assert worker.process.poll() is None


async def test_a_record_passed_off_as_another_agency_s_is_dead_lettered_not_shared(
    secure: SecureBus, worker: ShareWorker
) -> None:
    """health may write its own topic, but not claim that hrss published the record
    (the ce_source header is the writer's word): the share worker refuses it."""
    intake = Intake(CATALOG.get(DEATHS), Pseudonymizer(TEST_KEY.encode()))
    message = intake.from_json(orjson.dumps(sample_input(DEATHS, citizen(961))))
    assert isinstance(message, Message)
    headers = [(k, b"hrss" if k == "ce_source" else v) for k, v in message.headers]
    producer = AIOKafkaProducer(**secure.settings("health").kafka_client_options())
    await producer.start()
    try:
        await producer.send_and_wait(DEATHS, message.value, key=message.key, headers=headers)
    finally:
        await producer.stop()
    after = await publish(secure, "health", DEATHS, [citizen(962)])
    await wait_for_shares(secure, CIVIL_DEATHS, after)
    await wait_for_shares(secure, HRSS_DEATHS, after)
    wait_until(
        lambda: bool(
            worker.metric("databus_share_dead_letters_total", topic=DEATHS, reason="forged_source")
        ),
        "the forged record's dead letter",
    )
    for view in (CIVIL_DEATHS, HRSS_DEATHS):
        assert mine(await read_topic(secure.admin, view), [message]) == [], view
    audited = {v["source_event_id"] for v in values(await read_topic(secure.admin, AUDIT))}
    assert message.id not in audited
    letters = values(await read_topic(secure.admin, "dlq.rejected.v1"))
    (letter,) = [x for x in letters if "ce_source 'hrss'" in x["reasons"][0]["message"]]
    assert letter["agency"] == "databus-share"
    assert letter["reasons"][0]["message"] == (
        "ce_source 'hrss' on health.death_certificate.v1, whose records only health "
        "publishes: not shared"
    )


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        pytest.param("change", "the record was altered", id="changed"),
        pytest.param("delete", "1 record deleted before it", id="deleted"),
        pytest.param("swap", "records were reordered", id="reordered"),
    ],
)
async def test_tampering_with_a_copy_of_the_audit_trail_is_found_and_located(
    secure: SecureBus, worker: ShareWorker, tamper: str, reason: str
) -> None:
    audit = await read_topic(secure.admin, AUDIT)
    by_partition: dict[int, list[Record]] = {}
    for record in audit:
        by_partition.setdefault(record.partition, []).append(record)
    partition, records = max(by_partition.items(), key=lambda item: len(item[1]))
    assert len(records) >= 3
    copy = list(records)
    if tamper == "change":
        value = orjson.loads(copy[1].value)
        value["consumer"] = "police"
        copy[1] = Record(partition, 0, copy[1].key, orjson.dumps(value), copy[1].headers)
    elif tamper == "delete":
        del copy[1]
    else:
        copy[1], copy[2] = copy[2], copy[1]
    topic = f"audit-copy-{tamper}-{dt.datetime.now(dt.UTC):%H%M%S%f}"
    admin = AIOKafkaAdminClient(**secure.admin.kafka_client_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**secure.admin.kafka_client_options())
    await producer.start()
    try:
        for number, group in by_partition.items():
            for record in copy if number == partition else group:
                await producer.send(topic, record.value, key=record.key, partition=number)
        await producer.flush()
    finally:
        await producer.stop()

    result = verify(secure, "admin", "--topic", topic, "--no-cross-check")
    assert result.returncode == 1, result.stdout + result.stderr
    (broken,) = [line for line in result.stdout.splitlines() if line.startswith("BROKEN")]
    seq = 1 if tamper == "change" else 2
    assert broken.startswith(f"BROKEN partition {partition}, offset 1 (seq {seq}): "), broken
    assert reason in broken
    intact = [line for line in result.stdout.splitlines() if ", intact; head " in line]
    assert len(intact) == PARTITIONS - 1, "the untouched partitions still verify"
