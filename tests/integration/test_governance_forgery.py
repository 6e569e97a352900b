"""Insiders with the share worker's credential, on a secure broker of this module's own
(its audit trail is deliberately spoiled here).

Whoever holds that credential can write ``audit.sharing.v1``: a correctly chained
forgery used to verify as intact (and the running share worker, fenced by the forger's
producer, crashed on an AssertionError and then chained onto the forgery); a record that
is not an audit record at the end of a partition stopped sharing of that partition for
good. Now the cross-check names the forgery, the worker takes its partition back and
goes on sharing exactly once, and a foreign record is reported, never fatal.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from databus.catalog import AUDIT
from databus.governance.chain import ChainHead
from databus.governance.projector import SHARE_SOURCE
from databus.settings import Settings
from databus.wire import Encoder, Message
from tests.integration.secure import (
    SecureBus,
    ShareWorker,
    audit_verify,
    citizens_in,
    mine,
    publish,
    read_topic,
    secure_bus,
    values,
    wait_for_shares,
)

pytestmark = pytest.mark.integration

DEATHS = "health.death_certificate.v1"
CIVIL_DEATHS = "share.civil.health.death_certificate.v1"
HRSS_DEATHS = "share.hrss.health.death_certificate.v1"
FORGED_ID = "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0"


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory, broker_settings: Settings) -> Iterator[SecureBus]:
    with secure_bus(tmp_path_factory.mktemp("forgery-kafka"), broker_settings.cache_dir) as own:
        yield own


@pytest.fixture(scope="module")
def worker(bus: SecureBus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShareWorker]:
    running = ShareWorker(bus, tmp_path_factory.mktemp("forgery-worker") / "worker.log")
    running.start()
    try:
        yield running
    finally:
        running.stop()


async def share(bus: SecureBus, partition: int, count: int, born: dt.date) -> list[Message]:
    """Publish ``count`` deaths in ``partition``; return once both views hold them."""
    sent = await publish(bus, "health", DEATHS, citizens_in(partition, count, born=born))
    for view in (CIVIL_DEATHS, HRSS_DEATHS):
        await wait_for_shares(bus, view, sent)
    return sent


async def forge(bus: SecureBus, partition: int) -> dict[str, object]:
    """As databus-share: a producer with the partition's transactional id (it fences the
    running worker) appends a correctly chained audit record of a share that never was."""
    settings = bus.settings("databus-share")
    newest = [r for r in await read_topic(settings, AUDIT.topic) if r.partition == partition][-1]
    record, _ = ChainHead.after(partition, newest.value).seal(
        {
            "consumer": "civil",
            "dataset": DEATHS,
            "share_topic": CIVIL_DEATHS,
            "person_ref": "A" * 26,
            "source_event_id": FORGED_ID,
            "source_offset": 0,
            "fields": ["person_ref", "occurred_at", "date_of_death"],
            "purpose": "End social assistance after a death.",
            "legal_basis": None,
            "shared_at": dt.datetime.now(dt.UTC).isoformat(),
        }
    )
    message = Encoder(AUDIT, SHARE_SOURCE).encode(record, subject="A" * 26)
    producer = AIOKafkaProducer(
        **settings.kafka_client_options(),
        transactional_id=f"databus-share-{partition}",
        enable_idempotence=True,
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(
                AUDIT.topic, message.value, key=message.key, headers=message.headers,
                partition=partition,
            )  # fmt: skip
    finally:
        await producer.stop()
    return record


async def test_a_chained_forgery_is_reported_and_the_fenced_worker_goes_on_exactly_once(
    bus: SecureBus, worker: ShareWorker
) -> None:
    partition = 1
    before = await share(bus, partition, 3, dt.date(1937, 3, 3))
    forged = await forge(bus, partition)
    after = await share(bus, partition, 3, dt.date(1937, 4, 4))

    assert worker.process is not None
    assert worker.process.poll() is None, worker.tail()
    assert worker.metric("databus_share_fenced_total", partition=str(partition)) >= 1
    for view in (CIVIL_DEATHS, HRSS_DEATHS):
        shared = Counter(r.headers["ce_id"] for r in await read_topic(bus.admin, view))
        assert {m.id.encode() for m in before + after} <= set(shared), view
        assert max(shared.values()) == 1, f"{view}: a record shared twice"
    audit = values(await read_topic(bus.admin, AUDIT.topic))
    audited = Counter((v["consumer"], v["source_event_id"]) for v in audit)
    assert max(audited.values()) == 1, "a share audited twice"
    assert {m.id for m in after} <= {i for _, i in audited}
    # The worker chained its later records onto the forgery (a chain cannot tell):
    mine_after = [v for v in audit if v["source_event_id"] in {m.id for m in after}]
    assert min(v["seq"] for v in mine_after) > forged["seq"]

    result = audit_verify(bus, "auditor")
    assert result.returncode == 1, result.stdout + result.stderr
    assert not [line for line in result.stdout.splitlines() if line.startswith("BROKEN")]
    (unbacked,) = [line for line in result.stdout.splitlines() if line.startswith("UNBACKED")]
    assert unbacked.startswith(f"UNBACKED {AUDIT.topic}[{partition}]@")
    assert f"(seq {forged['seq']}): no share of {FORGED_ID} in {CIVIL_DEATHS}[{partition}]" in (
        unbacked
    )
    assert "1 audit record or share contradicted by the topics" in result.stderr


async def test_a_foreign_record_in_the_audit_topic_is_reported_and_sharing_goes_on(
    bus: SecureBus, worker: ShareWorker
) -> None:
    partition = 2
    await share(bus, partition, 2, dt.date(1937, 5, 5))
    producer = AIOKafkaProducer(**bus.settings("databus-share").kafka_client_options())
    await producer.start()
    try:
        sent = await producer.send_and_wait(AUDIT.topic, b"not an audit record", partition=2)
    finally:
        await producer.stop()
    # Only a worker taking the partition over reads the chain's tail: restart it.
    worker.stop()
    worker.start()
    later = await share(bus, partition, 2, dt.date(1937, 6, 6))

    assert worker.process is not None
    assert worker.process.poll() is None, worker.tail()
    foreign = worker.metric("databus_share_foreign_audit_records_total", partition="2")
    assert foreign == 1, worker.tail()
    where = f"{AUDIT.topic}[2]@{sent.offset}"
    assert f"{where}: not an audit record (not JSON); skipped" in worker.tail()
    letters = values(await read_topic(bus.admin, "dlq.rejected.v1"))
    (letter,) = [x for x in letters if x["source"] == where]
    assert letter["agency"] == "databus-share"
    assert letter["raw"] == "not an audit record"
    audit = [orjson.loads(r.value) for r in await read_topic(bus.admin, AUDIT.topic)
             if r.partition == partition and r.offset > sent.offset]  # fmt: skip
    assert {v["source_event_id"] for v in audit} >= {m.id for m in later}

    result = audit_verify(bus, "auditor")
    lines = result.stdout.splitlines()
    assert f"FOREIGN partition 2, offset {sent.offset}: not an audit record (not JSON)" in lines
    (chain,) = [line for line in lines if line.startswith("partition 2:")]
    assert ", intact; head " in chain, "the chain goes on around the foreign record"
    assert result.returncode == 1
    assert mine(await read_topic(bus.admin, CIVIL_DEATHS), later)
