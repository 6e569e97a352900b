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

from aiokafka import TopicPartition

from databus.governance.chain import ChainHead
from databus.governance.projector import SHARE_SOURCE, Projection
from databus.runtime.transactions import Batch, TransactionalWriter
from databus.settings import Settings
from databus.wire import Message

#: Consumer group, client id and transactional id prefix of the share worker.
SHARE_APP_ID = SHARE_SOURCE


class PartitionWriter:
    """Everything written for one partition: its transactional writer and chain head."""

    def __init__(self, partition: int, settings: Settings) -> None:
        self.partition = partition
        self.lock = asyncio.Lock()
        self.head = ChainHead.start(partition)
        self.closed = False
        """Revoked: the partition belongs to another worker now."""
        self.failed = False
        """The last batch failed and taking the partition back did not work (yet)."""
        self._writer = TransactionalWriter(SHARE_APP_ID, partition, settings, group_id=SHARE_APP_ID)

    @property
    def transactional_id(self) -> str:
        return self._writer.transactional_id

    async def open(self) -> None:
        """Start the producer: this fences an earlier owner and aborts its open batch."""
        await self._writer.open()

    async def close(self) -> None:
        """Stop the producer (its open transaction, if any, is aborted by the broker)."""
        await self._writer.close()

    async def write(self, out: Projection, offsets: dict[TopicPartition, int]) -> None:
        """Write a batch's output and commit its input offsets in one transaction."""
        letters = [rejection.to_message(source=SHARE_SOURCE) for rejection in out.dead_letters]
        await self._writer.commit(Batch(pinned=out.messages, keyed=letters, offsets=offsets))

    async def write_letters(self, letters: list[Message]) -> None:
        """Dead letters of the worker's own (not of a batch), in a transaction of their own."""
        if letters:
            await self._writer.commit(Batch(keyed=letters))
