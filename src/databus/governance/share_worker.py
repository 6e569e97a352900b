"""The share worker: source topics in, share topics and the audit trail out, exactly once.

One consumer group (``databus-share``) reads every shareable topic. Partitions are
assigned by range, so partition ``p`` of every topic goes to the same worker, which
alone writes partition ``p`` of the share topics and of ``audit.sharing.v1`` through
its transactional :class:`~databus.governance.partition_writer.PartitionWriter`. On
assignment the worker reads the newest committed audit record of ``p`` to continue its
chain (records there that are not audit records are reported and skipped), and the
committed input offsets to continue reading.

A record that cannot be shared is dead-lettered, never a crash; a failed transaction is
aborted and its batch read again from the committed offsets; a fenced producer (another
one started with the partition's transactional id) is replaced by a fresh one, which
fences the intruder in turn. The grants in force are recorded (``grants.applied``, in
``audit.operations.v1``) before the worker shares anything under them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError

from databus import metrics
from databus.catalog import AUDIT, CATALOG, DLQ, Catalog
from databus.errors import AuditChainError, DatabusError, MissingTopicError, WriterFailed
from databus.governance.chain_tail import Tail, read_tail
from databus.governance.operations import operation_record, record_operation
from databus.governance.partition_writer import SHARE_APP_ID, PartitionWriter
from databus.governance.projector import Projector, foreign_audit_letter
from databus.governance.watch import GrantsWatcher
from databus.internals import kafka_client
from databus.records.audit import OperationAudit
from databus.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["SHARE_APP_ID", "AuditChainError", "ShareWorker", "run_share_worker"]

_FETCH_TIMEOUT_MS = 500
_MAX_RECORDS = 2000

Recorder = Callable[[Settings, OperationAudit], Awaitable[None]]
"""Writes an operations audit record (:func:`record_operation`; a stand-in in tests)."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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
        record: Recorder = record_operation,
    ) -> None:
        self._settings = settings
        self._watcher = watcher
        self._catalog = catalog
        self._zone = ZoneInfo(time_zone)
        self._clock = clock
        self._record = record
        self._projector = Projector(watcher.grants, catalog)
        self._reload_pending = False
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
            await self._record_grants()  # nothing is shared under grants not on record
            self._consumer.subscribe(self.topics, listener=_Rebalance(self))
            log.warning(
                "share worker: %d grants, reading %d topics", len(self._watcher.grants),
                len(self.topics),
            )  # fmt: skip
            while not stopping.is_set():
                if self.failure is not None:
                    raise self.failure
                if self._watcher.refresh():
                    self._reload_pending = True
                if self._reload_pending:
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

    async def _record_grants(self) -> None:
        """Write the ``grants.applied`` record of the grants in force (raises if it cannot)."""
        grants, files = self._watcher.grants, self._watcher.files
        today = self._clock().astimezone(self._zone).date()
        active = len(grants.active(today))
        details = {
            "path": str(self._watcher.path),
            "files": list(files.names),
            "fingerprint": files.digest,
            "grants": len(grants),
            "active": active,
            "expired": len(grants) - active,
        }
        record = operation_record(self._settings, "grants.applied", "done", details=details)
        await self._record(self._settings, record)
        metrics.SHARE_GRANTS_APPLIED.inc()

    async def _reload(self, stopping: asyncio.Event) -> None:
        """New grants: their share topics must exist and their record be written before
        anything is shared under them; until then the previous grants stay in force."""
        projector = Projector(self._watcher.grants, self._catalog)
        while missing := await self._missing_topics(projector):
            log.error("waiting for %s: run `databus topics apply`", ", ".join(missing))
            if stopping.is_set():
                return
            await asyncio.sleep(5)
        try:
            await self._record_grants()
        except (KafkaError, DatabusError):
            log.exception("cannot record the new grants in audit.operations.v1; the previous "
                          "grants stay in force, trying again")  # fmt: skip
            return
        self._projector = projector
        self._reload_pending = False

    async def _missing_topics(self, projector: Projector | None = None) -> list[str]:
        wanted = [*(projector or self._projector).share_topics, AUDIT.topic, DLQ.topic]
        cluster = await kafka_client(self._consumer).fetch_all_metadata()
        return [topic for topic in wanted if topic not in cluster.topics()]

    def _count_grants(self) -> None:
        today = self._clock().astimezone(self._zone).date()
        grants = self._projector.grants
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
                if writer.closed:
                    continue
                if writer.failed:  # the batch is read again from the committed offsets
                    await self._recover(writer, list(fetched))
                    continue
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
        except WriterFailed as failed:
            if failed.fenced:
                log.error("%s; taking the partition back", failed)
                metrics.SHARE_FENCED.labels(str(writer.partition)).inc()
            else:
                log.exception("%s; reading the batch again", failed)
            metrics.SHARE_ABORTED.inc()
            await self._recover(writer, list(fetched))
            return
        writer.head = out.head
        for (consumer, dataset), count in out.shared.items():
            metrics.SHARE_RECORDS.labels(consumer, dataset).inc(count)
        for (consumer, dataset), count in out.withheld.items():
            metrics.SHARE_WITHHELD.labels(consumer, dataset).inc(count)
        for (topic, reason), count in out.refused.items():
            metrics.SHARE_DEAD_LETTERS.labels(topic, reason).inc(count)

    async def _recover(self, writer: PartitionWriter, tps: list[TopicPartition]) -> None:
        """After a failed batch, take the partition back as on assignment: a fresh
        producer (fencing whichever producer has its transactional id now), the chain's
        committed head, the committed input offsets. If that fails too, the next batch
        of the partition tries again."""
        await writer.close()
        writer.failed = True
        try:
            await writer.open()
            await self._take_over(writer)
            await self._seek_committed(tps)
        except (KafkaError, DatabusError):
            log.exception("partition %d: cannot take it back yet", writer.partition)
            metrics.SHARE_RECOVERY_FAILURES.labels(str(writer.partition)).inc()
            await writer.close()
            await self._seek_committed_quietly(tps)
            return
        writer.failed = False
        log.warning("partition %d: taken back, sharing again", writer.partition)

    async def claim(self, assigned: set[TopicPartition]) -> None:
        """Take over newly assigned partitions (see the module docstring); a partition
        is shared only once its producer, chain head and offsets are all in place."""
        partitions = sorted({tp.partition for tp in assigned} - set(self._writers))
        writers = [PartitionWriter(p, self._settings) for p in partitions]
        await asyncio.gather(*(writer.open() for writer in writers))
        for writer in writers:
            await self._take_over(writer)
        await self._seek_committed(assigned)
        self._writers.update((writer.partition, writer) for writer in writers)
        log.info("sharing partitions %s", sorted({tp.partition for tp in assigned}))

    async def _take_over(self, writer: PartitionWriter) -> None:
        """Continue the chain after its newest committed audit record; report what
        follows it that is not an audit record (fenced writers are done by now)."""
        tail = await read_tail(self._audit_reader, writer.partition)
        writer.head = tail.head
        if tail.foreign:
            self._report_foreign(writer.partition, tail)
            letters = [
                foreign_audit_letter(writer.partition, stored.offset, stored.value, why)
                for stored, why in tail.foreign
            ]
            try:
                await writer.write_letters(letters)
            except WriterFailed:  # logged and counted already; the next batch recovers
                log.exception("partition %d: the foreign records' dead letters were not "
                              "written", writer.partition)  # fmt: skip

    def _report_foreign(self, partition: int, tail: Tail) -> None:
        for stored, why in tail.foreign:
            log.error(
                "%s[%d]@%d: %s; skipped (the chain continues after seq %d) and "
                "dead-lettered; see `databus audit verify`",
                AUDIT.topic, partition, stored.offset, why, tail.head.next_seq - 1,
            )  # fmt: skip
        metrics.SHARE_FOREIGN_AUDIT_RECORDS.labels(str(partition)).inc(len(tail.foreign))

    async def release(self, partitions: set[int]) -> None:
        """Finish and close the writers of revoked partitions."""
        for partition in sorted(partitions):
            writer = self._writers.pop(partition, None)
            if writer is not None:
                async with writer.lock:
                    writer.closed = True
                    await writer.close()

    async def _seek_committed(self, tps: Iterable[TopicPartition]) -> None:
        """Read from the committed offsets, fetched after this worker's producers fenced
        any earlier owner (so its last batch is either committed or aborted by now)."""
        committed = {tp: await self._consumer.committed(tp) for tp in sorted(tps)}
        fresh = [tp for tp, offset in committed.items() if offset is None]
        beginnings = await self._consumer.beginning_offsets(fresh) if fresh else {}
        for tp, offset in committed.items():
            self._consumer.seek(tp, beginnings[tp] if offset is None else offset)

    async def _seek_committed_quietly(self, tps: list[TopicPartition]) -> None:
        """Rewind a partition that cannot be shared now, so no record is passed over."""
        try:
            await self._seek_committed(tps)
        except KafkaError:
            log.exception("partition %s: cannot rewind to the committed offsets", tps)


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
