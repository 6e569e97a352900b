"""The share worker: source topics in, share topics and the audit trail out, exactly once.

One consumer group (``databus-share``) reads every shareable topic. Partitions are
assigned by range, so partition ``p`` of every topic goes to the same worker, which
alone writes partition ``p`` of the share topics and of ``audit.sharing.v1``. Per
partition it has a transactional producer (``transactional.id`` ``databus-share-<p>``):
a batch's share messages, audit records, dead letters and input offsets commit
together or not at all, and starting the producer fences any earlier owner of ``p``
(a worker that lost the partition without noticing cannot append to its chain). On
assignment the worker reads the newest committed audit record of ``p`` to continue its
chain, and the committed input offsets to continue reading.

A record that cannot be read is dead-lettered, never a crash; a failed transaction is
aborted and its batch read again from the committed offsets.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import Any
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError

from databus import metrics
from databus.catalog import AUDIT, CATALOG, DLQ, Catalog
from databus.errors import DatabusError, MissingTopicError
from databus.governance.chain import ChainHead
from databus.governance.projector import SHARE_SOURCE, Projection, Projector
from databus.governance.watch import GrantsWatcher
from databus.settings import Settings

log = logging.getLogger(__name__)

#: Consumer group, client id and transactional id prefix of the share worker.
SHARE_APP_ID = SHARE_SOURCE
_FETCH_TIMEOUT_MS = 500
_MAX_RECORDS = 2000
_TAIL_WINDOW = 32
_READ_TIMEOUT_S = 60.0


class AuditChainError(DatabusError):
    """The audit trail cannot be continued (its newest record is not an audit record)."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PartitionWriter:
    """Everything written for one partition: its transactional producer and chain head."""

    def __init__(self, partition: int, settings: Settings) -> None:
        self.partition = partition
        self._settings = settings
        self.lock = asyncio.Lock()
        self.head = ChainHead.start(partition)
        self.closed = False
        self._producer: AIOKafkaProducer | None = None

    async def open(self) -> None:
        """Start the producer: this fences an earlier owner and aborts its open batch."""
        producer = AIOKafkaProducer(
            **self._settings.kafka_client_options(),
            client_id=f"{SHARE_APP_ID}-{self.partition}",
            transactional_id=f"{SHARE_APP_ID}-{self.partition}",
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_batch_size=256 * 1024,
        )
        await producer.start()
        self._producer = producer

    async def close(self) -> None:
        self.closed = True
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def write(self, out: Projection, offsets: dict[TopicPartition, int]) -> None:
        """Write a batch's output and commit its input offsets in one transaction."""
        producer = self._producer
        if producer is None:
            raise DatabusError(f"partition {self.partition}: the producer is not open")
        await producer.begin_transaction()
        try:
            for message in out.messages:
                await producer.send(
                    message.topic,
                    message.value,
                    key=message.key,
                    headers=message.headers,
                    partition=self.partition,
                )
            for rejection in out.dead_letters:
                letter = rejection.to_message(source=SHARE_SOURCE)
                await producer.send(letter.topic, letter.value, headers=letter.headers)
            await producer.send_offsets_to_transaction(offsets, SHARE_APP_ID)
            await producer.commit_transaction()
        except BaseException:
            try:
                await producer.abort_transaction()
            except KafkaError:
                log.warning("partition %d: could not abort the transaction", self.partition)
            raise


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: ShareWorker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._worker.release({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        try:
            await self._worker.claim(set(assigned))
        except Exception as exc:  # aiokafka would only log it: stop the worker instead
            log.exception("could not take over partitions %s", sorted(assigned))
            self._worker.failure = exc


class ShareWorker:
    """Runs the projection of every grant until told to stop."""

    def __init__(
        self,
        settings: Settings,
        watcher: GrantsWatcher,
        *,
        time_zone: str,
        catalog: Catalog = CATALOG,
        session_timeout_s: float = 30.0,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self._settings = settings
        self._watcher = watcher
        self._catalog = catalog
        self._zone = ZoneInfo(time_zone)
        self._clock = clock
        self._projector = Projector(watcher.grants, catalog)
        self.topics = [dataset.topic for dataset in catalog.shareable()]
        options = settings.kafka_client_options()
        self._consumer = AIOKafkaConsumer(
            **options,
            client_id=SHARE_APP_ID,
            group_id=SHARE_APP_ID,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=int(session_timeout_s * 1000),
            heartbeat_interval_ms=int(min(3.0, session_timeout_s / 3) * 1000),
        )
        self._audit_reader = AIOKafkaConsumer(
            **options,
            client_id=f"{SHARE_APP_ID}-audit-reader",
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            # Not "latest": a reset racing with our seek must not skip the chain's tail.
            auto_offset_reset="earliest",
        )
        self._writers: dict[int, PartitionWriter] = {}
        self.failure: BaseException | None = None

    async def run(self, stopping: asyncio.Event) -> None:
        """Share until ``stopping`` is set; raises if partitions cannot be taken over."""
        await self._audit_reader.start()
        await self._consumer.start()
        try:
            missing = await self._missing_topics()
            if missing:
                raise MissingTopicError(
                    f"topic {', '.join(missing)} does not exist on "
                    f"{self._settings.bootstrap_servers}; run `databus topics apply` first"
                )
            self._consumer.subscribe(self.topics, listener=_Rebalance(self))
            log.warning(
                "share worker: %d grants, reading %d topics", len(self._watcher.grants),
                len(self.topics),
            )  # fmt: skip
            while not stopping.is_set():
                if self.failure is not None:
                    raise self.failure
                if self._watcher.refresh():
                    await self._reload(stopping)
                self._count_grants()
                batches = await self._consumer.getmany(
                    timeout_ms=_FETCH_TIMEOUT_MS, max_records=_MAX_RECORDS
                )
                await self._share(batches)
        finally:
            await self._consumer.stop()
            await self.release(set(self._writers))
            await self._audit_reader.stop()

    async def _reload(self, stopping: asyncio.Event) -> None:
        """New grants: share topics must exist before anything is shared under them."""
        projector = Projector(self._watcher.grants, self._catalog)
        while missing := await self._missing_topics(projector):
            log.error("waiting for %s: run `databus topics apply`", ", ".join(missing))
            if stopping.is_set():
                return
            await asyncio.sleep(5)
        self._projector = projector

    async def _missing_topics(self, projector: Projector | None = None) -> list[str]:
        wanted = [*(projector or self._projector).share_topics, AUDIT.topic, DLQ.topic]
        cluster = await self._consumer._client.fetch_all_metadata()
        return [topic for topic in wanted if topic not in cluster.topics()]

    def _count_grants(self) -> None:
        today = self._clock().astimezone(self._zone).date()
        grants = self._watcher.grants
        active = len(grants.active(today))
        metrics.SHARE_GRANTS.labels("active").set(active)
        metrics.SHARE_GRANTS.labels("expired").set(len(grants) - active)

    async def _share(self, batches: dict[TopicPartition, list[Any]]) -> None:
        by_partition: dict[int, dict[TopicPartition, list[Any]]] = {}
        for tp, records in batches.items():
            if records:
                by_partition.setdefault(tp.partition, {})[tp] = records
        for partition, fetched in sorted(by_partition.items()):
            writer = self._writers.get(partition)
            if writer is None:
                continue  # revoked meanwhile: the new owner starts at the committed offsets
            async with writer.lock:
                if not writer.closed:
                    await self._share_partition(writer, fetched)

    async def _share_partition(
        self, writer: PartitionWriter, fetched: dict[TopicPartition, list[Any]]
    ) -> None:
        now = self._clock()
        records = [record for batch in fetched.values() for record in batch]
        out = self._projector.project(
            records,
            writer.head,
            now=now,
            today=now.astimezone(self._zone).date(),
        )
        offsets = {tp: batch[-1].offset + 1 for tp, batch in fetched.items()}
        try:
            await writer.write(out, offsets)
        except (KafkaError, DatabusError):
            log.exception(
                "partition %d: sharing a batch failed; reading it again", writer.partition
            )
            metrics.SHARE_ABORTED.inc()
            await self._recover(writer, list(fetched))
            return
        writer.head = out.head
        for (consumer, dataset), count in out.shared.items():
            metrics.SHARE_RECORDS.labels(consumer, dataset).inc(count)
        for (consumer, dataset), count in out.withheld.items():
            metrics.SHARE_WITHHELD.labels(consumer, dataset).inc(count)
        for rejection in out.dead_letters:
            metrics.SHARE_DEAD_LETTERS.labels(rejection.dataset).inc()

    async def _recover(self, writer: PartitionWriter, tps: list[TopicPartition]) -> None:
        """After a failed batch: a fresh producer (fencing the old one), the chain's
        committed head, and the committed input offsets."""
        await writer.close()
        try:
            await writer.open()
            writer.head = await self._read_head(writer.partition)
            await self._seek_committed(tps)
            writer.closed = False
        except KafkaError:
            log.exception("partition %d: cannot resume; waiting for a rebalance", writer.partition)
            await writer.close()

    async def claim(self, assigned: set[TopicPartition]) -> None:
        """Take over newly assigned partitions (see the module docstring); a partition
        is shared only once its producer, chain head and offsets are all in place."""
        partitions = sorted({tp.partition for tp in assigned} - set(self._writers))
        writers = [PartitionWriter(p, self._settings) for p in partitions]
        await asyncio.gather(*(writer.open() for writer in writers))
        for writer in writers:
            writer.head = await self._read_head(writer.partition)
        await self._seek_committed(assigned)
        self._writers.update((writer.partition, writer) for writer in writers)
        log.info("sharing partitions %s", sorted({tp.partition for tp in assigned}))

    async def release(self, partitions: set[int]) -> None:
        """Finish and close the writers of revoked partitions."""
        for partition in sorted(partitions):
            writer = self._writers.pop(partition, None)
            if writer is not None:
                async with writer.lock:
                    await writer.close()

    async def _seek_committed(self, tps: Iterable[TopicPartition]) -> None:
        """Read from the committed offsets, fetched after this worker's producers fenced
        any earlier owner (so its last batch is either committed or aborted by now)."""
        committed = {tp: await self._consumer.committed(tp) for tp in sorted(tps)}
        fresh = [tp for tp, offset in committed.items() if offset is None]
        beginnings = await self._consumer.beginning_offsets(fresh) if fresh else {}
        for tp, offset in committed.items():
            self._consumer.seek(tp, beginnings[tp] if offset is None else offset)

    async def _read_head(self, partition: int) -> ChainHead:
        """The chain head after the newest committed audit record of ``partition``."""
        reader = self._audit_reader
        tp = TopicPartition(AUDIT.topic, partition)
        reader.assign([tp])
        start = (await reader.beginning_offsets([tp]))[tp]
        end = (await reader.end_offsets([tp]))[tp]
        window = _TAIL_WINDOW
        while end > start:
            begin = max(start, end - window)
            reader.seek(tp, begin)
            last = await self._last_value(tp, end)
            if last is not None:
                try:
                    return ChainHead.after(partition, last[1])
                except ValueError as invalid:
                    raise AuditChainError(
                        f"{AUDIT.topic}[{partition}]@{last[0]} {invalid}: the chain cannot be "
                        "continued; run `databus audit verify`"
                    ) from None
            if begin == start:
                break
            window *= 8  # only transaction markers and aborted records so far
        return ChainHead.start(partition)

    async def _last_value(self, tp: TopicPartition, end: int) -> tuple[int, bytes | None] | None:
        reader = self._audit_reader
        last = None
        deadline = asyncio.get_running_loop().time() + _READ_TIMEOUT_S
        while await reader.position(tp) < end:
            if asyncio.get_running_loop().time() > deadline:
                raise AuditChainError(f"cannot read {tp.topic}[{tp.partition}] up to {end}")
            fetched = await reader.getmany(tp, timeout_ms=_FETCH_TIMEOUT_MS)
            for message in fetched.get(tp, []):
                if message.offset < end:
                    last = (message.offset, message.value)
        return last


async def run_share_worker(
    settings: Settings,
    watcher: GrantsWatcher,
    *,
    time_zone: str,
    session_timeout_s: float = 30.0,
    stopping: asyncio.Event | None = None,
) -> None:
    """Run a share worker until ``stopping`` is set (or SIGINT/SIGTERM, from the CLI)."""
    worker = ShareWorker(
        settings, watcher, time_zone=time_zone, session_timeout_s=session_timeout_s
    )
    await worker.run(stopping or asyncio.Event())
