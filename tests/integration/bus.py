"""Helpers for integration tests that talk to the session's real broker."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import BaseModel

from databus.client.subscriber import Subscriber
from databus.internals import kafka_client
from databus.settings import Settings
from databus.wire import Event


async def read_events(
    settings: Settings, datasets: Sequence[str], *, idle: float = 2.0
) -> list[Event[BaseModel]]:
    """Every event currently in ``datasets``, read from the beginning without a group."""
    async with Subscriber(datasets, settings, from_beginning=True) as subscriber:
        return [event async for event in subscriber.events(idle_timeout=idle)]


async def read_records(
    settings: Settings, topics: Sequence[str], *, isolation_level: str = "read_uncommitted"
) -> list[ConsumerRecord[Any, Any]]:
    """Every message now in ``topics``, as aiokafka records, read without a group
    (by default also those of open and aborted transactions)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
    )
    await consumer.start()
    try:
        cluster = await kafka_client(consumer).fetch_all_metadata()
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(cluster.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[Any, Any]] = []
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(timeout_ms=1000)
            for messages in batches.values():
                records += messages
            # The position, not the last record: a transaction's marker may end a partition.
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return records
    finally:
        await consumer.stop()


async def read_raw(settings: Settings, topics: Sequence[str]) -> list[bytes]:
    """Every byte of every message (key, value, header names and values) in ``topics``."""
    chunks: list[bytes] = []
    for m in await read_records(settings, topics):
        chunks += [m.key or b"", m.value or b""]
        chunks += [name.encode() + value for name, value in m.headers]
    return chunks


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real ``databus`` command against the test broker."""
    env = os.environ | {
        "DATABUS_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "DATABUS_PSEUDONYM_KEY": settings.pseudonym_key.get_secret_value()
        if settings.pseudonym_key
        else "",
        "DATABUS_PARTITIONS": str(settings.partitions),
    }
    return subprocess.run(
        [sys.executable, "-m", "databus", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
