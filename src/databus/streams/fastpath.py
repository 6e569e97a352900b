"""Fetched batches straight from Faust's consumer to a batch handler.

Faust hands every message through its conductor, a channel and a stream to an agent,
one at a time, even when the agent takes them in batches; that plumbing was 76 % of a
worker's time (docs/benchmarks.md). :class:`BatchConsumer` replaces the one loop that
does it — the consumer's drain loop — for the topics a :class:`BatchHandler` claims:
each batch fetched from Kafka goes, in time order per partition
(:mod:`databus.streams.ordering`), to the handler as aiokafka records, and the offsets
are acknowledged in bulk when the handler reports that its output is safely written —
or, when the handler commits them in its own transactions (``commits_offsets``), not at
all. Everything else (table changelogs during recovery, other topics) takes Faust's
path, and group membership, rebalancing and recovery stay Faust's. The consumer reads
``read_committed``; the handler is told of each assignment before Faust recovers the
tables (so it can fence the partitions' previous owners), and says where a
transactional changelog's data ends (:mod:`databus.runtime.offsets`).

This relies on internals of faust-streaming 0.15 (``Consumer._drain_messages``,
``_wait_next_records``, the ``_acked`` bookkeeping); ``pyproject.toml`` pins the minor
version and the decision tests exercise this path against a real broker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from databus import metrics
from databus.internals import (
    request_rejoin,
    service_stopped,
    set_fetch_wait,
    set_isolation_level,
)
from databus.streams.ordering import PartitionOrder
from databus.streams.web import operator_web

log = logging.getLogger(__name__)

#: A fetch returns once this much data is there or FETCH_MAX_WAIT_MS has passed, instead of
#: as soon as one record is: a fetch over the ~150 input partitions costs about the same
#: Python work whatever it holds. At a steady 2,000 events/s this halved the worker's CPU
#: (54 % → 28 % of a core) for ~30 ms more median latency (docs/benchmarks.md).
FETCH_MIN_BYTES = 64 * 1024
FETCH_MAX_WAIT_MS = 50
#: A topic-partition this close to its end may only have transaction markers left
#: (an input written by a transactional producer): the consumer's position is asked.
MARKER_SLACK = 64
#: Fetches whose output may be awaiting Kafka's acknowledgement at the same time.
MAX_BATCHES_IN_FLIGHT = 8


class BatchHandler(Protocol):
    """What takes over the records of some topics."""

    topics: frozenset[str]
    barriers: frozenset[str]
    """Topics whose records wait until the other topics of their partition are read up to
    them (:mod:`databus.streams.ordering`): the clock."""

    commits_offsets: bool
    """The handler commits its input offsets itself (in its transactions): the
    consumer acknowledges nothing to Faust, whose commits would race them."""

    async def handle(self, records: Sequence[Any]) -> Awaitable[None]:
        """Process ``records`` (in time order per partition) and queue their output on
        the producer, in order; the returned awaitable completes once Kafka has
        acknowledged all of that output, and raises if it could not."""
        ...

    async def on_assigned(self, assigned: set[TP]) -> None:
        """Called with a new assignment before Faust recovers its tables."""
        ...

    async def visible_ends(self, ends: Mapping[TP, int]) -> dict[TP, int]:
        """``ends`` of table changelogs as the table's recovery is to count them."""
        ...


class _BatchingThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, whose fetches wait a little for more data."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Read by AIOKafkaConsumer.start() when it builds its fetcher.
        set_fetch_wait(consumer, min_bytes=FETCH_MIN_BYTES, max_wait_ms=FETCH_MAX_WAIT_MS)
        # Inputs, and the changelog the table recovers: never an aborted transaction's
        # records (a zombie's, or a batch killed between its send and its commit).
        set_isolation_level(consumer, "read_committed")
        return consumer


class BatchConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, delivering the handler's topics in time-ordered batches."""

    _order: PartitionOrder | None = None
    _fetched_to: dict[TP, int]
    """Per topic-partition: the offset after the last record fetched (the position)."""
    _released_to: dict[TP, int]
    """Per topic-partition: the last offset handed to the handler."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Set before any rebalance callback can run (they may come before the drain loop).
        self._fetched_to = {}
        self._released_to = {}

    def _new_consumer_thread(self) -> Any:
        return _BatchingThread(self, loop=self.loop, beacon=self.beacon)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        await super().on_partitions_revoked(revoked)
        self._forget(revoked)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        handler: BatchHandler | None = getattr(self.app, "batch_handler", None)
        if handler is not None:
            await handler.on_assigned(assigned)
        await super().on_partitions_assigned(assigned, generation_id)

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]:
        """End offsets; those of table changelogs as the handler says recovery is to
        count them (after their last record, not after a transaction's marker)."""
        ends = dict(await super().highwaters(*partitions))
        handler: BatchHandler | None = getattr(self.app, "batch_handler", None)
        changelogs = self.app.tables.changelog_topics
        mine = {tp: end for tp, end in ends.items() if tp.topic in changelogs and end is not None}
        if handler is not None and mine:
            ends.update(await handler.visible_ends(mine))
        return ends

    def rejoin(self) -> None:
        """Ask for a rebalance (every partition is taken again from its commit)."""
        request_rejoin(self._thread)

    def _forget(self, tps: set[TP] | None = None) -> None:
        """Buffered records of ``tps`` (all when ``None``) will be fetched again."""
        if self._order is not None:
            self._order.forget(tps)
        for positions in (self._fetched_to, self._released_to):
            if tps is None:
                positions.clear()
            for tp in tps or ():
                positions.pop(tp, None)

    async def _drain_messages(self, fetcher: Any) -> None:
        handler: BatchHandler | None = getattr(self.app, "batch_handler", None)
        if handler is None:
            await super()._drain_messages(fetcher)
            return
        self._order = order = PartitionOrder(sorted(handler.topics), handler.barriers)
        self._forget()
        fetcher_stopped = service_stopped(fetcher)
        pending: set[asyncio.Task[None]] = set()
        try:
            while not (self._stopped.is_set() or fetcher_stopped()):
                records, active = await self._wait_next_records(1.0)
                await asyncio.sleep(0)
                if self.should_stop:
                    continue
                delivered = await self._step(handler, order, records or {}, active)
                if delivered is None:
                    continue
                task = asyncio.ensure_future(delivered)
                pending.add(task)
                task.add_done_callback(pending.discard)
                if len(pending) >= MAX_BATCHES_IN_FLIGHT:
                    await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                await self._maybe_commit()
        except self.consumer_stopped_errors:
            if not self.transport.app.should_stop:
                raise
        except asyncio.CancelledError:
            if not self.transport.app.should_stop:
                raise
        finally:
            if pending:
                await asyncio.wait(pending)

    async def _step(
        self,
        handler: BatchHandler,
        order: PartitionOrder,
        records: Mapping[TP, list[Any]],
        active: set[TP] | None,
    ) -> Awaitable[None] | None:
        """Buffer one fetch and release what may go (see :meth:`_release`)."""
        if not self.flow_active:
            self._forget()
            await self.perform_seek()
            return None
        generation = self.app.consumer_generation_id
        claimed = await self._claim(handler, records, active)
        if self._moved_since(generation):
            # A rebalance began while other topics' records were handed to Faust: these
            # are of partitions this worker may no longer hold, and were forgotten with
            # them; the new assignment reads from the committed offsets.
            return None
        for tp, batch in claimed.items():
            self._fetched(tp, batch)
            order.add(tp, batch)
        if not order.buffered():
            return None
        return await self._release(handler, order)

    async def _claim(
        self, handler: BatchHandler, records: Mapping[TP, list[Any]], active: set[TP] | None
    ) -> dict[TP, list[Any]]:
        """The fetched records of the handler's topics; the others take Faust's path."""
        claimed: dict[TP, list[Any]] = {}
        for tp, batch in records.items():
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                continue
            if tp.topic in handler.topics:
                claimed[tp] = batch
            else:
                await self._deliver_one_by_one(tp, batch)
        return claimed

    def _fetched(self, tp: TP, batch: list[Any]) -> None:
        self._read_offset[tp] = batch[-1].offset
        self._fetched_to[tp] = batch[-1].offset + 1
        highwater = self.highwater(tp)
        self.app.monitor.track_tp_end_offset(tp, highwater)
        lag = max(0, highwater - batch[-1].offset - 1) if highwater is not None else 0
        metrics.WORKER_CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)

    async def _release(
        self, handler: BatchHandler, order: PartitionOrder
    ) -> Awaitable[None] | None:
        """Hand what the time order releases to the handler; what is returned
        acknowledges its offsets once its output is delivered."""
        generation = self.app.consumer_generation_id
        assigned = self.assignment()
        sources = [t for t in handler.topics if t not in handler.barriers]
        barriers = sorted(handler.barriers)

        def sources_of(partition: int) -> list[TP]:
            return [tp for t in sources if (tp := TP(t, partition)) in assigned]

        def barriers_of(partition: int) -> list[TP]:
            return [tp for t in barriers if (tp := TP(t, partition)) in assigned]

        caught_up = await self._caught_up(order, sources_of, barriers_of)
        if self._moved_since(generation):
            return None  # a rebalance began meanwhile and forgot the buffers
        records, spans = order.take(sources_of, caught_up.__contains__, barriers=barriers_of)
        if not records:
            return None
        first = {}
        for tp, (start, last) in spans.items():
            first[tp] = first_to_acknowledge(self._released_to.get(tp), start)
            self._released_to[tp] = last
        delivery = await handler.handle(records)

        async def acknowledge() -> None:
            try:
                await delivery
            except Exception as exc:  # output not written: the offsets stay uncommitted
                log.exception("writing the output of %d records failed", len(records))
                await self.crash(exc)
                return
            if handler.commits_offsets or self.app.consumer_generation_id != generation:
                return  # committed with the output; or the partitions moved meanwhile
            for tp, (_, last) in spans.items():
                self._ack_range(tp, first[tp], last)

        return acknowledge()

    async def _caught_up(
        self,
        order: PartitionOrder,
        sources_of: Callable[[int], list[TP]],
        barriers_of: Callable[[int], list[TP]],
    ) -> set[TP]:
        """Of the topic-partitions the release may wait for (those with nothing buffered,
        of partitions with anything buffered), those the consumer has fetched up to the
        end offset the broker reports now."""
        # Of each partition with records waiting, the topic-partitions without any: a
        # buffered one is not asked about (its head takes its place in the time order).
        candidates = [
            tp
            for p in order.partitions()
            for tp in [*sources_of(p), *barriers_of(p)]
            if not order.has(tp)
        ]
        if not candidates:
            return set()
        ends = await self.highwaters(*candidates)
        caught_up = set()
        for tp in candidates:
            position = self._fetched_to.get(tp)
            if position is None:  # nothing fetched since the assignment: where it starts
                position = await self.position(tp)
                if position is not None:
                    self._fetched_to[tp] = position
            end = ends.get(tp, 0)
            if position is not None and 0 < end - position <= MARKER_SLACK:
                # Transactions' markers after the last record take offsets that are
                # never fetched as records: the consumer's own position is past them.
                position = max(position, await self.position(tp) or 0)
            if position is not None and position >= end:
                caught_up.add(tp)
        return caught_up

    def _moved_since(self, generation: int) -> bool:
        """Whether a rebalance has begun (or ended) since ``generation`` was read."""
        return not self.flow_active or self.app.consumer_generation_id != generation

    def _ack_range(self, tp: TP, first: int, last: int) -> None:
        """Acknowledge every offset from ``first`` to the batch's last record: offsets
        with no record between them (transaction markers) are acknowledged as Faust's
        own loop does with its gap bookkeeping."""
        committed = self._committed_offset[tp]
        if committed is not None:
            first = max(first, committed)
        offsets = range(first, last + 1)
        index = self._acked_index[tp]
        fresh = [offset for offset in offsets if offset not in index]
        index.update(fresh)
        self._acked[tp].extend(fresh)
        self._n_acked += len(fresh)

    async def _deliver_one_by_one(self, tp: TP, batch: list[Any]) -> None:
        """Faust's own path, for the records no handler claims."""
        for record in batch:
            message = self._to_message(tp, record)
            read = self._read_offset[tp]
            if read is None or message.offset >= read:
                await self.wait_first(self.callback(message), self.suspend_flow.wait())
                self._read_offset[tp] = message.offset

    async def _maybe_commit(self) -> None:
        commit_every = self._commit_every
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()


def first_to_acknowledge(released: int | None, start: int) -> int:
    """The first offset a release of a partition acknowledges, whose first record is at
    ``start``: right after the partition's previous release (``released``), so that
    offsets with no record in between (transaction markers) are acknowledged too; but
    ``start`` itself when the consumer has gone back to it (a seek to the committed
    offset), so that records read again are acknowledged again. Acknowledging from the
    old ``released`` then would leave the re-read records unacknowledged, and the
    partition's commit stuck below them for good."""
    if released is None or released >= start:
        return start
    return released + 1


class BatchTransport(faust_aiokafka.Transport):
    """The aiokafka transport with :class:`BatchConsumer`."""

    Consumer: ClassVar[Any] = BatchConsumer


class BatchApp(faust.App):
    """A Faust app whose consumer gives :attr:`batch_handler` its topics in batches."""

    batch_handler: BatchHandler | None = None

    def _new_transport(self) -> Any:
        return BatchTransport(self.conf.broker_consumer, self)

    def _new_web(self) -> Any:
        return operator_web(self)
