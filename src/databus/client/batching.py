"""Per-partition record batches: the publisher's fast path for many records.

``AIOKafkaProducer.send`` does per-message work (metadata wait, partitioner, accumulator
lookup, one future per record). For a file of records we fill one batch per partition
with the producer's own ``BatchBuilder`` and hand over whole batches, with the same
partitioner as ``send`` and the Java client (murmur2 of the key over the sorted
partition list) and the same producer settings, so per-key order and idempotence hold.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaProducer

from databus.wire import Message

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS: dict[int, struct.Struct] = {}


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``Utils.murmur2``), as an unsigned 32-bit integer.

    The same function as ``aiokafka.partitioner.murmur2``, about twice as fast: the
    4-byte words are unpacked in C rather than assembled byte by byte.
    """
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    count = length >> 2
    words = _WORDS.get(count)
    if words is None:
        words = _WORDS[count] = struct.Struct(f"<{count}I")
    for word in words.unpack_from(data):
        k = (word * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    tail = length & 3
    if tail:
        base = count << 2
        if tail == 3:  # noqa: PLR2004 - the three possible tail lengths of murmur2
            h ^= data[base + 2] << 16
        if tail >= 2:  # noqa: PLR2004
            h ^= data[base + 1] << 8
        h = ((h ^ data[base]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


@lru_cache(maxsize=1 << 16)
def default_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partition of a keyed message (the Java client's and aiokafka's).

    Cached: a worker asks it for the same person several times per record (the
    partition check, the store, the changelog, the derived events).
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions


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
