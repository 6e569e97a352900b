"""One transactional producer per input partition, as both workers write.

A worker that holds input partition ``p`` writes everything it derives from ``p`` —
output records, dead letters, changelog rows — and the input offsets it read up to, in
one Kafka transaction of the producer whose ``transactional.id`` is ``<prefix>-<p>``:
all of it becomes visible to ``read_committed`` readers together, or none of it. Opening
the producer (InitProducerId) fences any earlier producer with that id and aborts its
open transaction, so a worker that lost ``p`` without noticing (paused past its session
timeout: a zombie) can no longer commit anything for it. This is the pre-KIP-447 model
that Kafka Streams used with ``exactly_once`` (one producer per task); aiokafka's
``send_offsets_to_transaction`` carries no group generation, so the fencing comes from
the transactional id alone.

:class:`TransactionFailed` is the one error of a batch: the transaction was aborted or
the producer fenced, and nothing of the batch is visible. Whoever holds the writer
decides what "taking the partition back" means for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import InvalidProducerEpoch, KafkaError, ProducerFenced

from databus.errors import DatabusError, WriterFailed
from databus.runtime.producers import producer_options
from databus.settings import Settings
from databus.wire import Message

log = logging.getLogger(__name__)

#: After a fence aiokafka's transaction manager is in FATAL_ERROR, and every further
#: call (abort, begin) fails an ``assert`` on its state machine: AssertionError means
#: "this producer is finished" as much as ProducerFenced does.
FATAL = (ProducerFenced, InvalidProducerEpoch, AssertionError)

#: Rows for one topic-partition, sent with aiokafka's batch API (key, value).
Rows = Sequence[tuple[bytes, bytes]]


@dataclass(slots=True)
class Batch:
    """What one transaction writes."""

    pinned: Sequence[Message] = ()
    """Records sent to the writer's own partition of their topic."""
    keyed: Sequence[Message] = ()
    """Records partitioned by the producer (by key; dead letters have none)."""
    rows: Mapping[TopicPartition, Rows] = field(default_factory=dict)
    """Raw rows for given topic-partitions (a table's changelog)."""
    offsets: Mapping[TopicPartition, int] = field(default_factory=dict)
    """Input offsets to commit for the group (the next offset to read)."""


class TransactionalWriter:
    """The transactional producer of one input partition (``<prefix>-<partition>``)."""

    def __init__(self, prefix: str, partition: int, settings: Settings, *, group_id: str) -> None:
        self.partition = partition
        self.transactional_id = f"{prefix}-{partition}"
        self._settings = settings
        self._group_id = group_id
        self._producer: AIOKafkaProducer | None = None

    @property
    def is_open(self) -> bool:
        return self._producer is not None

    @property
    def client(self) -> Any:
        """The open producer's client (its connections and metadata)."""
        if self._producer is None:
            raise DatabusError(f"{self.transactional_id}: the producer is not open")
        return self._producer.client

    async def open(self) -> None:
        """Start the producer: this fences an earlier owner and aborts its open batch."""
        options = producer_options(self._settings, linger_ms=5)
        options["client_id"] = self.transactional_id
        producer = AIOKafkaProducer(**options, transactional_id=self.transactional_id)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def close(self) -> None:
        """Stop the producer (its open transaction, if any, is aborted by the broker)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await producer.stop()
            except (KafkaError, AssertionError):
                log.warning("%s: the old producer did not stop cleanly", self.transactional_id)

    async def commit(self, batch: Batch) -> dict[TopicPartition, int]:
        """Write ``batch`` in one transaction and commit it; the offset of the last
        row written to each topic-partition of ``batch.rows``. Raises
        :class:`~databus.errors.WriterFailed` (``fenced`` or not) when the transaction
        did not commit: then nothing of it is visible."""
        producer = self._producer
        if producer is None:
            raise DatabusError(f"{self.transactional_id}: the producer is not open")
        sent: list[asyncio.Future[object]] = []
        counted: list[tuple[TopicPartition, asyncio.Future[object], int]] = []
        try:
            await producer.begin_transaction()
            records: list[tuple[Message, int | None]] = [(m, self.partition) for m in batch.pinned]
            records += [(m, None) for m in batch.keyed]
            for message, partition in records:
                future = await producer.send(
                    message.topic,
                    message.value,
                    key=message.key,
                    headers=message.headers,
                    partition=partition,
                )
                sent.append(future)
            for tp, rows in batch.rows.items():
                await _send_rows(producer, tp, rows, counted)
            if batch.offsets:
                await producer.send_offsets_to_transaction(dict(batch.offsets), self._group_id)
            await producer.commit_transaction()
        except BaseException as failed:
            for future in [*sent, *(future for _, future, _ in counted)]:
                future.add_done_callback(_retrieve)  # reported once, as the transaction's
            if not isinstance(failed, FATAL):
                await self._abort()
            if isinstance(failed, (KafkaError, AssertionError)):
                raise WriterFailed(
                    self.partition, failed, fenced=isinstance(failed, FATAL)
                ) from failed
            raise
        last: dict[TopicPartition, int] = {}
        for tp, future, count in counted:
            metadata = future.result()
            last[tp] = max(last.get(tp, -1), metadata.offset + count - 1)  # type: ignore[attr-defined]
        return last

    async def _abort(self) -> None:
        producer = self._producer
        if producer is None:
            return
        try:
            await producer.abort_transaction()
        except (KafkaError, AssertionError):
            log.warning("%s: could not abort the transaction", self.transactional_id)


async def _send_rows(
    producer: AIOKafkaProducer,
    tp: TopicPartition,
    rows: Rows,
    sent: list[tuple[TopicPartition, asyncio.Future[object], int]],
) -> None:
    """Send ``rows`` to ``tp`` in as few batches as fit; each batch's future and size is
    added to ``sent`` as soon as it is queued (so that a failure can retrieve them)."""
    batch = producer.create_batch()
    count = 0
    for key, value in rows:
        if batch.append(key=key, value=value, timestamp=None) is None:
            batch.close()
            future = await producer.send_batch(batch, tp.topic, partition=tp.partition)
            sent.append((tp, future, count))
            batch = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None)
            count = 0
        count += 1
    if count:
        batch.close()
        future = await producer.send_batch(batch, tp.topic, partition=tp.partition)
        sent.append((tp, future, count))


def _retrieve(future: asyncio.Future[object]) -> None:
    if not future.cancelled():
        future.exception()
