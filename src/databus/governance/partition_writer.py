"""What the share worker writes for one partition: a transactional producer and the
head of that partition's audit chain.

Per partition the worker has a transactional producer (``transactional.id``
``databus-share-<p>``): a batch's share messages, audit records, dead letters and input
offsets commit together or not at all, and starting the producer fences any earlier
owner of ``p`` (a worker that lost the partition without noticing cannot append to its
chain). The other way round, a newer producer with the same id fences this one — a
successor, or whoever holds the share worker's credential; :class:`WriterFailed` says
so, and the worker then takes the partition back with a fresh producer
(:meth:`ShareWorker._recover`) instead of crashing.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import InvalidProducerEpoch, KafkaError, ProducerFenced

from databus.errors import DatabusError, WriterFailed
from databus.governance.chain import ChainHead
from databus.governance.projector import SHARE_SOURCE, Projection
from databus.settings import Settings
from databus.wire import Message

log = logging.getLogger(__name__)

#: Consumer group, client id and transactional id prefix of the share worker.
SHARE_APP_ID = SHARE_SOURCE

#: After a fence aiokafka's transaction manager is in FATAL_ERROR, and every further
#: call (abort, begin) fails an ``assert`` on its state machine: AssertionError means
#: "this producer is finished" as much as ProducerFenced does.
_FATAL = (ProducerFenced, InvalidProducerEpoch, AssertionError)


class PartitionWriter:
    """Everything written for one partition: its transactional producer and chain head."""

    def __init__(self, partition: int, settings: Settings) -> None:
        self.partition = partition
        self._settings = settings
        self.lock = asyncio.Lock()
        self.head = ChainHead.start(partition)
        self.closed = False
        """Revoked: the partition belongs to another worker now."""
        self.failed = False
        """The last batch failed and taking the partition back did not work (yet)."""
        self._producer: AIOKafkaProducer | None = None

    @property
    def transactional_id(self) -> str:
        return f"{SHARE_APP_ID}-{self.partition}"

    async def open(self) -> None:
        """Start the producer: this fences an earlier owner and aborts its open batch."""
        producer = AIOKafkaProducer(
            **self._settings.kafka_client_options(),
            client_id=self.transactional_id,
            transactional_id=self.transactional_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_batch_size=256 * 1024,
        )
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
                log.warning("partition %d: the old producer did not stop cleanly", self.partition)

    async def write(self, out: Projection, offsets: dict[TopicPartition, int]) -> None:
        """Write a batch's output and commit its input offsets in one transaction."""
        letters = [rejection.to_message(source=SHARE_SOURCE) for rejection in out.dead_letters]
        await self._transaction(out.messages, letters, offsets)

    async def write_letters(self, letters: list[Message]) -> None:
        """Dead letters of the worker's own (not of a batch), in a transaction of their own."""
        if letters:
            await self._transaction([], letters, {})

    async def _transaction(
        self,
        messages: list[Message],
        letters: list[Message],
        offsets: dict[TopicPartition, int],
    ) -> None:
        producer = self._producer
        if producer is None:
            raise DatabusError(f"partition {self.partition}: the producer is not open")
        sent: list[asyncio.Future[object]] = []
        try:
            await producer.begin_transaction()
            for message in messages:
                future = await producer.send(
                    message.topic,
                    message.value,
                    key=message.key,
                    headers=message.headers,
                    partition=self.partition,
                )
                sent.append(future)
            for letter in letters:
                future = await producer.send(letter.topic, letter.value, headers=letter.headers)
                sent.append(future)
            if offsets:
                await producer.send_offsets_to_transaction(offsets, SHARE_APP_ID)
            await producer.commit_transaction()
        except BaseException as failed:
            for future in sent:  # their error is the transaction's, reported once below
                future.add_done_callback(_retrieve)
            if not isinstance(failed, _FATAL):
                await self._abort()
            if isinstance(failed, (KafkaError, AssertionError)):
                raise WriterFailed(
                    self.partition, failed, fenced=isinstance(failed, _FATAL)
                ) from failed
            raise

    async def _abort(self) -> None:
        producer = self._producer
        if producer is None:
            return
        try:
            await producer.abort_transaction()
        except (KafkaError, AssertionError):
            log.warning("partition %d: could not abort the transaction", self.partition)


def _retrieve(future: asyncio.Future[object]) -> None:
    if not future.cancelled():
        future.exception()
