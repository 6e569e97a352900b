"""The worker's writes on the batch path: state, its changelog, and derived events.

:class:`DirectState` is the processor's :class:`~databus.streams.processor.StateStore`
over the table's local store: reads and writes go straight to the key's own partition
database, and every write is also kept as a changelog row of that partition.
:class:`BatchOutput` then sends a batch's changelog rows with aiokafka's batch API (one
request per partition instead of one ``send`` per key) and its derived events and dead
letters with its own idempotent producer, and tells when Kafka has all of it; only then
are the input offsets acknowledged, and the table's persisted changelog offsets — the
point from which a restarted worker replays the changelog into its local store — move.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from faust.types import TP

from databus.client.publisher import producer_options
from databus.settings import Settings
from databus.streams.admission import RESERVED_PREFIX
from databus.streams.table import PersonStore, key_partition
from databus.wire import Message


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
