"""Signed checkpoints against the super user, on a secure broker of this module's own
(its audit trail is deleted and rebuilt here).

Super users bypass ACLs: one could delete the start of the audit trail (verify used to
blame "retention", although the topic keeps records forever) or delete the topic and
rebuild it from the public genesis (verify: intact). A checkpoint signed by the
auditor's key, kept outside Kafka, makes both visible; a tampered checkpoint, or one
checked with another key, is refused.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.records_to_delete import RecordsToDelete
from aiokafka.errors import KafkaError

from databus.catalog import AUDIT
from databus.errors import DatabusError
from databus.governance.chain import ChainHead, content_bytes
from databus.governance.grants import load_grants
from databus.governance.views import catalog_with_views
from databus.ops.topics import apply_topics
from databus.settings import Settings
from tests.integration.secure import (
    PARTITIONS,
    Record,
    SecureBus,
    ShareWorker,
    audit_verify,
    citizens_in,
    publish,
    read_topic,
    run_databus,
    secure_bus,
    wait_for_shares,
)

pytestmark = pytest.mark.integration

DEATHS = "health.death_certificate.v1"
VIEWS = ("share.civil.health.death_certificate.v1", "share.hrss.health.death_certificate.v1")


@dataclass(frozen=True)
class Signed:
    """The auditor's keys and a checkpoint of the trail as it was shared."""

    private: Path
    public: Path
    checkpoint: Path

    def expect(self) -> tuple[str, ...]:
        return ("--expect-heads", str(self.checkpoint), "--public-key", str(self.public))


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory, broker_settings: Settings) -> Iterator[SecureBus]:
    with secure_bus(tmp_path_factory.mktemp("checkpoint-kafka"), broker_settings.cache_dir) as own:
        yield own


async def share_some(bus: SecureBus, born: dt.date) -> None:
    """Two deaths per partition, shared with both consumers."""
    ids = [i for partition in range(PARTITIONS) for i in citizens_in(partition, 2, born=born)]
    sent = await publish(bus, "health", DEATHS, ids)
    for view in VIEWS:
        await wait_for_shares(bus, view, sent)


@pytest.fixture(scope="module")
def shared(bus: SecureBus, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Shares in every partition, by a share worker that is gone when they are checked."""
    worker = ShareWorker(bus, tmp_path_factory.mktemp("checkpoint-worker") / "worker.log")
    worker.start()
    try:
        asyncio.run(share_some(bus, dt.date(1936, 7, 7)))
    finally:
        worker.stop()


@pytest.fixture(scope="module")
def signed(bus: SecureBus, shared: None, tmp_path_factory: pytest.TempPathFactory) -> Signed:
    """The auditor's keys, and a checkpoint of the trail as shared."""
    keys = tmp_path_factory.mktemp("auditor-keys")
    made = run_databus(bus, "auditor", "audit", "keygen", "--out", str(keys))
    assert made.returncode == 0, made.stderr
    private, public = keys / "audit-checkpoint.key", keys / "audit-checkpoint.pub"
    checkpoint = keys.parent / f"{keys.name}-checkpoint.json"
    signing = run_databus(
        bus, "auditor", "audit", "checkpoint", "--key", str(private), "--out", str(checkpoint)
    )
    assert signing.returncode == 0, signing.stdout + signing.stderr
    return Signed(private, public, checkpoint)


def lines_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    return result.stdout.splitlines()


def test_a_checkpoint_signs_every_head_and_a_later_verify_finds_them(
    bus: SecureBus, signed: Signed
) -> None:
    assert stat.S_IMODE(signed.private.stat().st_mode) == 0o600
    document = orjson.loads(signed.checkpoint.read_bytes())
    heads = document["checkpoint"]["heads"]
    assert [h["partition"] for h in heads] == list(range(PARTITIONS))
    assert all(h["seq"] >= 3 for h in heads), "two deaths, two consumers, per partition"
    result = audit_verify(bus, "auditor", *signed.expect())
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"checkpointed heads: {PARTITIONS} of {PARTITIONS} in the chains at their place" in (
        lines_of(result)
    )


def test_a_tampered_checkpoint_or_another_key_is_refused(
    bus: SecureBus, signed: Signed, tmp_path: Path
) -> None:
    document = orjson.loads(signed.checkpoint.read_bytes())
    document["checkpoint"]["heads"][0]["seq"] -= 1
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(orjson.dumps(document))
    result = audit_verify(
        bus, "auditor", "--expect-heads", str(tampered), "--public-key", str(signed.public)
    )
    assert result.returncode == 2
    assert "the signature does not hold: the file was changed after it was signed" in (
        result.stderr
    )
    other = run_databus(bus, "auditor", "audit", "keygen", "--out", str(tmp_path / "other"))
    assert other.returncode == 0, other.stderr
    wrong = tmp_path / "other" / "audit-checkpoint.pub"
    result = audit_verify(
        bus, "auditor", "--expect-heads", str(signed.checkpoint), "--public-key", str(wrong)
    )
    assert result.returncode == 2
    assert "not by the given public key" in result.stderr


async def test_records_deleted_from_the_start_are_not_blamed_on_retention(
    bus: SecureBus, shared: None
) -> None:
    """The super user's DeleteRecords (ACLs do not bind super users): audit.sharing.v1
    keeps its records forever, so a log that no longer starts at 0 was cut."""
    admin = AIOKafkaAdminClient(**bus.admin.kafka_client_options())
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(AUDIT.topic, 3): RecordsToDelete(2)})
    finally:
        await admin.close()
    plain = audit_verify(bus, "auditor")
    assert plain.returncode == 1, plain.stdout + plain.stderr
    assert (
        "FOUND partition 3: records before offset 2 were deleted (the topic keeps its "
        "records forever: retention did not remove them)"
    ) in lines_of(plain)
    (chain,) = [line for line in lines_of(plain) if line.startswith("partition 3:")]
    assert "from offset 2" in chain
    assert "retention" not in chain


async def rebuild_from_genesis(bus: SecureBus, changed: int) -> None:
    """As the super user: delete audit.sharing.v1, create it again, and write every
    record's content chained anew from the public genesis, but with one record of
    partition ``changed`` saying another consumer received it."""
    records = await read_topic(bus.admin, AUDIT.topic)
    admin = AIOKafkaAdminClient(**bus.admin.kafka_client_options())
    await admin.start()
    try:
        await admin.delete_topics([AUDIT.topic])
        for _ in range(300):
            if AUDIT.topic not in await admin.list_topics():
                break
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    catalog = catalog_with_views(load_grants(bus.grants))
    while True:  # the broker may still be removing the old topic's partitions
        try:
            await apply_topics(bus.admin, catalog)
            break
        except (KafkaError, DatabusError):
            await asyncio.sleep(0.5)
    producer = AIOKafkaProducer(**bus.admin.kafka_client_options())
    await producer.start()
    try:
        for partition in range(PARTITIONS):
            mine: list[Record] = [r for r in records if r.partition == partition]
            head = ChainHead.start(partition)
            for number, record in enumerate(mine):
                content = orjson.loads(content_bytes(orjson.loads(record.value)))
                content.pop("seq")
                if partition == changed and number == 1:
                    content["consumer"] = "police"
                sealed, head = head.seal(content)
                await producer.send(
                    AUDIT.topic, orjson.dumps(sealed), key=record.key, partition=partition,
                    headers=list(record.headers.items()),
                )  # fmt: skip
        await producer.flush()
    finally:
        await producer.stop()


async def test_a_topic_rebuilt_from_the_genesis_verifies_alone_but_not_against_a_checkpoint(
    bus: SecureBus, signed: Signed
) -> None:
    await rebuild_from_genesis(bus, changed=1)
    alone = audit_verify(bus, "auditor", "--no-cross-check")
    assert alone.returncode == 0, alone.stdout + alone.stderr  # the chain alone is fooled
    against = audit_verify(bus, "auditor", "--no-cross-check", *signed.expect())
    assert against.returncode == 1, against.stdout + against.stderr
    found = [line for line in lines_of(against) if line.startswith("FOUND")]
    assert any(
        line.startswith("FOUND partition 1: ") and "checkpointed history was rewritten" in line
        for line in found
    ), found
    assert any(  # its start was deleted before the rebuild: the chain is shorter
        line.startswith("FOUND partition 3: ") and "is gone: the chain ends at seq" in line
        for line in found
    ), found
    # Copied verbatim, a chain is the same, but where transaction markers were its
    # records now sit at other offsets: "the topic was rebuilt", if they moved.
    assert all("rewritten" in line or "the topic was rebuilt" in line for line in found), found
