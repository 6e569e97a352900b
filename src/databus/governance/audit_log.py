"""Reading the audit trail back from Kafka and verifying every partition's chain.

Only committed records count (``read_committed``): a batch the share worker aborted
shared nothing and is no part of the chain.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from databus.catalog import AUDIT
from databus.errors import MissingTopicError
from databus.governance.chain import PartitionReport, StoredRecord, verify_partition
from databus.settings import Settings

_FETCH_TIMEOUT_MS = 1000
_IDLE_LIMIT_S = 60.0


async def read_partitions(
    settings: Settings, topic: str
) -> dict[int, tuple[list[StoredRecord], bool]]:
    """Every committed record of every partition of ``topic``, in offset order, and
    whether the partition's log no longer starts at offset 0 (retention)."""
    consumer = AIOKafkaConsumer(
        **settings.kafka_client_options(),
        client_id=f"{settings.client_id}-audit",
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        # Not "latest": a reset racing with our seek to the beginning must not skip records.
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        numbers = cluster.partitions_for_topic(topic)
        if not numbers:
            raise MissingTopicError(
                f"topic {topic} does not exist on {settings.bootstrap_servers}, or "
                f"{settings.principal()} may not read it"
            )
        partitions = [TopicPartition(topic, p) for p in sorted(numbers)]
        consumer.assign(partitions)
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        read: dict[int, list[StoredRecord]] = {tp.partition: [] for tp in partitions}
        await _read_until(consumer, read, ends)
        return {tp.partition: (read[tp.partition], starts[tp] > 0) for tp in partitions}
    finally:
        await consumer.stop()


async def _read_until(
    consumer: AIOKafkaConsumer,
    read: dict[int, list[StoredRecord]],
    ends: dict[TopicPartition, int],
) -> None:
    loop = asyncio.get_running_loop()
    last_progress = loop.time()
    pending = {tp for tp, end in ends.items() if end > 0}
    while pending:
        fetched = await consumer.getmany(*pending, timeout_ms=_FETCH_TIMEOUT_MS)
        for tp, messages in fetched.items():
            end = ends[tp]
            read[tp.partition] += [
                StoredRecord(tp.partition, m.offset, m.value) for m in messages if m.offset < end
            ]
        for tp in list(pending):
            if await consumer.position(tp) >= ends[tp]:
                pending.discard(tp)
        if fetched:
            last_progress = loop.time()
        elif loop.time() - last_progress > _IDLE_LIMIT_S:
            raise TimeoutError(f"no progress reading {sorted(pending)}")


def verify(partitions: dict[int, tuple[list[StoredRecord], bool]]) -> list[PartitionReport]:
    """Verify each partition's chain; reports in partition order."""
    return [
        verify_partition(number, records, truncated=truncated)
        for number, (records, truncated) in sorted(partitions.items())
    ]


async def verify_topic(settings: Settings, topic: str = AUDIT.topic) -> Sequence[PartitionReport]:
    """Read and verify an audit topic (``audit.sharing.v1``, or a copy of it)."""
    return verify(await read_partitions(settings, topic))
