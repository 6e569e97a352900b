"""The worker's writes on the batch path: state, its changelog, and derived events.

:class:`DirectState` is the processor's :class:`~databus.streams.processor.StateStore`
over the table's local store: reads and writes go straight to the key's own partition
database, and every write is also kept as a changelog row of that partition, held in
memory until the batch's output is safely written.

Two writers take a batch's output:

* :class:`TransactionalOutput` (exactly-once, the default): per input partition, one
  Kafka transaction holds the batch's derived events, dead letters, changelog rows and
  input offsets; the local store and the persisted changelog offset move after the
  commit.
* :class:`BatchOutput` (at-least-once): one idempotent producer; the derived events and
  dead letters first, the changelog rows (aiokafka's batch API, one request per
  partition) once Kafka has them, and only then are the input offsets acknowledged and
  the table's persisted changelog offsets — the point from which a restarted worker
  replays the changelog into its local store — moved.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from faust.types import TP

from databus import metrics
from databus.errors import DatabusError, WriterFailed
from databus.runtime.producers import producer_options
from databus.runtime.transactions import Batch, TransactionalWriter
from databus.settings import Settings
from databus.streams.admission import RESERVED_PREFIX
from databus.streams.table import PersonStore, key_partition
from databus.wire import Message

log = logging.getLogger(__name__)


class DirectState:
    """Per-person state in the table's store; writes are collected as changelog rows.

    A write is held in memory (and read back from there) until Kafka has the batch's
    output and changelog: only then does it reach the local store (:meth:`settle`). A
    worker killed before that restarts from state that has not seen the batch, so the
    redelivered input decides again, instead of being recognised as already applied
    while its decisions were never delivered.
    """

    def __init__(self, table: Any) -> None:
        self._table = table
        self.changes: dict[int, list[tuple[bytes, bytes]]] = {}
        self._pending: dict[bytes, bytes] = {}
        self._absent: set[bytes] = set()
        """Keys read and not found in the store during the batch being processed."""
        self._new: set[bytes] = set()
        """Keys written since they were read absent, until their first write settles:
        each is one more person in the store (the state-size gauge)."""

    @property
    def _store(self) -> Any:
        return self._table.data

    def get(self, key: bytes) -> bytes | None:
        pending = self._pending.get(key)
        if pending is not None:
            return pending
        store = self._store
        if isinstance(store, PersonStore):
            value = store.get_in(key_partition(self._table, key), key)
            if value is None and not key.startswith(RESERVED_PREFIX):
                self._absent.add(key)
            return value
        stored: bytes | None = store.get(key)
        return stored

    def __setitem__(self, key: bytes, value: bytes) -> None:
        partition = key_partition(self._table, key)
        self._pending[key] = value
        self.changes.setdefault(partition, []).append((key, value))
        if key in self._absent:
            self._new.add(key)

    def items(self) -> Iterable[tuple[bytes, bytes]]:
        stored: Iterable[tuple[bytes, bytes]] = self._store.items()
        pending = self._pending
        yield from ((k, v) for k, v in stored if k not in pending)
        yield from list(pending.items())

    def take_changes(self) -> dict[int, list[tuple[bytes, bytes]]]:
        """The changelog rows written since the last call, by partition."""
        changes, self.changes = self.changes, {}
        self._absent.clear()
        return changes

    def settle(self, changes: dict[int, list[tuple[bytes, bytes]]]) -> None:
        """Write a delivered batch's rows to the local store (batches in order)."""
        store = self._store
        pending = self._pending
        new = self._new
        for partition, rows in changes.items():
            added = 0
            for key, value in rows:
                if isinstance(store, PersonStore):
                    store.put_in(partition, key, value)
                else:
                    store[key] = value
                if pending.get(key) is value:
                    del pending[key]
                if key in new:
                    new.discard(key)
                    added += 1
            if added and isinstance(store, PersonStore):
                store.add_persons(partition, added)

    def forget_partitions(self, partitions: Iterable[int]) -> None:
        """Drop held writes of revoked partitions (their batches' offsets are not
        acknowledged, so the next owner decides them again)."""
        gone = set(partitions)
        for key in [k for k in self._pending if key_partition(self._table, k) in gone]:
            del self._pending[key]
            self._new.discard(key)


class BatchOutput:
    """One idempotent producer for a worker's changelog rows and derived events.

    A batch's derived events and dead letters go first; its changelog rows only once
    Kafka has acknowledged them, and after the previous batch's rows, so that the
    changelog (what a worker that lost its local state recovers) never holds state
    whose decisions were not delivered.
    """

    def __init__(self, settings: Settings, table: Any, direct: DirectState) -> None:
        self._settings = settings
        self._table = table
        self._direct = direct
        self._producer: AIOKafkaProducer | None = None
        self._persisted: dict[int, int] = {}
        self._tail: asyncio.Future[None] | None = None

    async def started(self) -> AIOKafkaProducer:
        """The producer, started on first use."""
        if self._producer is None:
            options = producer_options(self._settings, linger_ms=5)
            options["client_id"] = f"{self._settings.client_id}-worker"
            producer = AIOKafkaProducer(**options)
            await producer.start()
            self._producer = producer
        return self._producer

    async def stop(self) -> None:
        """Deliver what is pending, then disconnect."""
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def write(
        self, changes: dict[int, list[tuple[bytes, bytes]]], messages: list[Message]
    ) -> Awaitable[None]:
        """Queue ``messages`` on the producer; the result completes when Kafka has
        acknowledged them and then ``changes`` (sent after them)."""
        producer = await self.started()
        sent = [
            await producer.send(m.topic, m.value, key=m.key, headers=m.headers) for m in messages
        ]
        previous, done = self._tail, asyncio.get_running_loop().create_future()
        self._tail = done
        return self._delivered(producer, sent, changes, previous, done)

    async def _delivered(
        self,
        producer: AIOKafkaProducer,
        sent: list[asyncio.Future[Any]],
        changes: dict[int, list[tuple[bytes, bytes]]],
        previous: asyncio.Future[None] | None,
        done: asyncio.Future[None],
    ) -> None:
        try:
            await asyncio.gather(*sent)
            if previous is not None:
                await asyncio.shield(previous)
            changelog = self._table.changelog_topic.get_topic_name()
            persisted = await self._send_changelog(producer, changelog, changes)
            await asyncio.gather(*(future for _, future, _ in persisted))
            self._direct.settle(changes)
            store = self._table.data
            for partition, future, count in persisted:
                last = future.result().offset + count - 1
                if last > self._persisted.get(partition, -1):
                    self._persisted[partition] = last
                    store.set_persisted_offset(TP(changelog, partition), last)
        except BaseException as exc:
            if not done.done():
                done.set_exception(exc)
                done.exception()  # retrieved: the caller sees it through this coroutine
            raise
        done.set_result(None)

    @staticmethod
    async def _send_changelog(
        producer: AIOKafkaProducer, changelog: str, changes: dict[int, list[tuple[bytes, bytes]]]
    ) -> list[tuple[int, asyncio.Future[Any], int]]:
        persisted: list[tuple[int, asyncio.Future[Any], int]] = []
        for partition, rows in changes.items():
            batch = producer.create_batch()
            count = 0
            for key, value in rows:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    batch.close()
                    future = await producer.send_batch(batch, changelog, partition=partition)
                    persisted.append((partition, future, count))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
                    count = 0
                count += 1
            batch.close()
            future = await producer.send_batch(batch, changelog, partition=partition)
            persisted.append((partition, future, count))
        return persisted

    def forget_partitions(self, partitions: Iterable[int]) -> None:
        """Forget the persisted offsets of revoked partitions."""
        for partition in partitions:
            self._persisted.pop(partition, None)


class TransactionalOutput:
    """Exactly-once output: per input partition, one transaction holds a batch's derived
    events, dead letters, changelog rows and input offsets (:mod:`databus.runtime`).

    The transactions of a partition follow each other in batch order; the local store
    is written (:meth:`DirectState.settle`) and the table's persisted changelog offset
    moved only after the commit. A transaction that fails — the writer was fenced by a
    newer owner, or the brokers refused it — is not retried here: the partition's
    later batches fail with it (they were decided on its state), its held writes are
    dropped, and ``on_failed`` asks the group for a rebalance, after which the
    partition is recovered from its changelog and read again from its committed
    offsets. A zombie (a worker paused past its session timeout) thus loses what it
    decided meanwhile, and the broker never shows any of it.
    """

    commits_offsets = True

    def __init__(
        self,
        settings: Settings,
        table: Any,
        direct: DirectState,
        *,
        prefix: str,
        group_id: str,
        on_failed: Callable[[int], None],
    ) -> None:
        self._settings = settings
        self._table = table
        self._direct = direct
        self._prefix = prefix
        self._group_id = group_id
        self._on_failed = on_failed
        self._writers: dict[int, TransactionalWriter] = {}
        self._tails: dict[int, asyncio.Future[bool]] = {}
        """Per partition: whether its newest transaction committed, once it is done."""
        self._persisted: dict[int, int] = {}

    def client(self) -> Any:
        """An open producer's client (for asking the brokers who they are)."""
        for writer in self._writers.values():
            if writer.is_open:
                return writer.client
        raise DatabusError("no transactional writer is open yet")

    async def assign(self, partitions: set[int]) -> None:
        """Hold a writer for each of ``partitions`` (opening one fences the partition's
        earlier owner, before its state is recovered), and none for the others."""
        for partition in sorted(set(self._writers) - partitions):
            await self._writers.pop(partition).close()
        fresh = [
            TransactionalWriter(self._prefix, p, self._settings, group_id=self._group_id)
            for p in sorted(partitions - set(self._writers))
        ]
        await asyncio.gather(*(writer.open() for writer in fresh))
        self._writers.update((writer.partition, writer) for writer in fresh)
        for partition in partitions:
            self._tails.pop(partition, None)  # a fresh start after a failed transaction

    async def drain(self, partitions: Iterable[int]) -> None:
        """Wait for the transactions of ``partitions`` in flight (before they are revoked:
        a commit after the next owner reads the committed offsets would be read again)."""
        tails = [tail for p in partitions if (tail := self._tails.get(p)) is not None]
        if tails:
            await asyncio.wait(tails)

    async def stop(self) -> None:
        await self.drain(list(self._tails))
        for writer in self._writers.values():
            await writer.close()
        self._writers.clear()

    async def write(
        self,
        changes: dict[int, list[tuple[bytes, bytes]]],
        messages: dict[int, list[Message]],
        offsets: dict[int, dict[TopicPartition, int]],
    ) -> Awaitable[bool]:
        """Start one transaction per partition of the batch; the result completes once
        all are done, ``True`` if every one committed."""
        changelog = self._table.changelog_topic.get_topic_name()
        loop = asyncio.get_running_loop()
        done = []
        for partition in sorted(set(changes) | set(messages) | set(offsets)):
            rows = changes.get(partition, [])
            batch = Batch(
                keyed=messages.get(partition, ()),
                rows={TopicPartition(changelog, partition): rows} if rows else {},
                offsets=offsets.get(partition, {}),
            )
            previous = self._tails.get(partition)
            tail: asyncio.Future[bool] = loop.create_future()
            self._tails[partition] = tail
            done.append(
                asyncio.ensure_future(
                    self._commit(partition, batch, {partition: rows}, previous=previous, tail=tail)
                )
            )
        return _all_committed(done)

    async def _commit(
        self,
        partition: int,
        batch: Batch,
        changes: dict[int, list[tuple[bytes, bytes]]],
        *,
        previous: asyncio.Future[bool] | None,
        tail: asyncio.Future[bool],
    ) -> bool:
        committed = False
        try:
            if previous is not None and not await asyncio.shield(previous):
                self._direct.forget_partitions([partition])
                return False  # decided on the state of a batch that did not commit
            writer = self._writers.get(partition)
            if writer is None:
                log.warning("partition %d: no writer (revoked); the batch is read again", partition)
                return False
            try:
                last = await writer.commit(batch)
            except WriterFailed as failed:
                log.error("%s; the partition is taken again from its commit", failed)
                metrics.WORKER_TRANSACTIONS_FAILED.labels(str(partition), str(failed.fenced)).inc()
                self._fail(partition)
                return False
            self._direct.settle(changes)
            changelog = self._table.changelog_topic.get_topic_name()
            offset = last.get(TopicPartition(changelog, partition))
            if offset is not None and offset > self._persisted.get(partition, -1):
                self._persisted[partition] = offset
                self._table.data.set_persisted_offset(TP(changelog, partition), offset)
            committed = True
            return True
        finally:
            tail.set_result(committed)

    def _fail(self, partition: int) -> None:
        self._direct.forget_partitions([partition])
        self._on_failed(partition)

    def forget_partitions(self, partitions: Iterable[int]) -> None:
        """Forget the persisted offsets of revoked partitions."""
        for partition in partitions:
            self._persisted.pop(partition, None)


async def _all_committed(done: Sequence[asyncio.Future[bool]]) -> bool:
    results = await asyncio.gather(*done)
    return all(results)
