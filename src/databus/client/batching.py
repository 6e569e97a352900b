"""Per-partition record batches: the publisher's fast path for many records.

``AIOKafkaProducer.send`` does per-message work (metadata wait, partitioner, accumulator
lookup, one future per record). For a file of records we fill one batch per partition
with the producer's own ``BatchBuilder`` and hand over whole batches, with the same
partitioner as ``send`` and the Java client (murmur2 of the key over the sorted
partition list) and the same producer settings, so per-key order and idempotence hold.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer

from databus.partitioner import murmur2
from databus.wire import Message


class PartitionBatches:
    """Open batches of one topic, one per partition, sent when full or flushed."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        partitions: set[int],
        *,
        on_delivered: Callable[[float], None] | None = None,
    ) -> None:
        """``on_delivered`` is called with the seconds from a batch being opened to
        Kafka acknowledging it."""
        self._producer = producer
        self._topic = topic
        self._partitions = sorted(partitions)
        self._open: dict[int, Any] = {}
        self._opened: dict[int, float] = {}
        self._on_delivered = on_delivered
        self.sent: list[asyncio.Future[Any]] = []

    def partition_for(self, key: bytes) -> int:
        """Kafka's default partition for ``key``."""
        return self._partitions[(murmur2(key) & 0x7FFFFFFF) % len(self._partitions)]

    def add(self, message: Message) -> tuple[int, Any, float] | None:
        """Append a keyed message to its partition's batch.

        Synchronous, so that the common case costs no coroutine; when the batch was full
        it returns ``(partition, full batch, when it was opened)``, which the caller
        hands to :meth:`send`.
        """
        if message.key is None:
            raise ValueError(f"{self._topic}: batched messages must have a key")
        partition = self.partition_for(message.key)
        batch = self._open.get(partition)
        if batch is None:
            batch = self._open[partition] = self._producer.create_batch()
            self._opened[partition] = time.monotonic()
        if self._append(batch, message) is not None:
            return None
        fresh = self._open[partition] = self._producer.create_batch()
        self._opened[partition], opened = time.monotonic(), self._opened[partition]
        if self._append(fresh, message) is None:
            raise ValueError(f"{self._topic}: a message is larger than a whole batch")
        return partition, batch, opened

    async def send(self, full: tuple[int, Any, float]) -> None:
        """Hand a full batch to the producer; its delivery future joins :attr:`sent`."""
        partition, batch, opened = full
        batch.close()
        future = await self._producer.send_batch(batch, self._topic, partition=partition)
        if self._on_delivered is not None:
            report = self._on_delivered
            future.add_done_callback(lambda _: report(time.monotonic() - opened))
        self.sent.append(future)

    async def flush(self) -> None:
        """Send every open batch."""
        for partition, batch in list(self._open.items()):
            await self.send((partition, batch, self._opened[partition]))
        self._open.clear()

    @staticmethod
    def _append(batch: Any, message: Message) -> object | None:
        metadata: object | None = batch.append(
            timestamp=None, key=message.key, value=message.value, headers=message.headers
        )
        return metadata
