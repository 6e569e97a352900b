"""The Faust app: co-partitioned input topics → one batched agent → derived topics.

Every source topic and ``system.clock.v1`` share key (``person_ref``), partitioner and
partition count, so one worker sees all of a person's events in order and keeps their
state in one table. Batches of input go to the Faust-free
:class:`~databus.streams.processor.DecisionProcessor` by one of two paths:

* **batch path** (Faust's ``processing_guarantee`` left at ``at_least_once``, the
  default): the consumer hands each fetch straight to :meth:`DecisionEngine.handle`
  (:mod:`databus.streams.fastpath`), and the batch's derived events, dead letters,
  changelog rows and input offsets go out in one transaction per input partition
  (``guarantee="exactly_once"``, the default), or on one idempotent producer with the
  offsets acknowledged once Kafka has the rest (``guarantee="at_least_once"``); see
  :mod:`databus.streams.output`;
* **agent path** (``processing_guarantee="exactly_once"``, or ``batch_path=False``;
  not offered by the CLI): a
  Faust agent takes events in batches (``take_events``), table writes and sends go
  through Faust. It handles records in arrival order, without the batch path's time
  order across topics (:mod:`databus.streams.ordering`), so a lagging worker can decide
  a tick before that day's evidence; docs/decisions.md says why it is kept only for the
  benchmark and tests.

The table uses ``use_partitioner=True`` so that on the agent path writes made while
handling a batch land in the changelog partition of the person's key, not in that of
Faust's "current event".
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aiokafka import TopicPartition

from databus import metrics
from databus.catalog import CATALOG, CLOCK, DLQ, Catalog
from databus.metrics import DEFAULT_HOST
from databus.partitioner import default_partition
from databus.rules import Policy
from databus.runtime.offsets import visible_ends
from databus.sandbox import cluster_id, is_demo_cluster
from databus.settings import Settings
from databus.streams.fastpath import BatchApp
from databus.streams.names import APP_ID, STATE_TABLE
from databus.streams.output import BatchOutput, DirectState, TransactionalOutput
from databus.streams.processor import DecisionProcessor, Output
from databus.streams.security import faust_broker_settings
from databus.streams.table import STORE_SCHEME, PersonStore, PersonTable
from databus.streams.web import add_operator_routes
from databus.wire import Encoder, Message

log = logging.getLogger(__name__)

Guarantee = Literal["at_least_once", "exactly_once"]
#: Loggers that create tens of thousands of debug records per second unless quietened.
NOISY_LOGGERS = ("aiokafka", "faust", "mode", "kafka")


@dataclass(frozen=True)
class EngineOptions:
    """How a worker runs; the defaults suit a laptop and CI."""

    app_id: str = APP_ID
    store: str = f"{STORE_SCHEME}://"
    guarantee: Guarantee = "exactly_once"
    """What the batch path delivers: each batch's output, changelog rows and input
    offsets in one transaction per input partition (``exactly_once``), or its output
    acknowledged before its offsets are (``at_least_once``; :mod:`databus.streams.output`)."""
    processing_guarantee: Guarantee = "at_least_once"
    """Faust's own guarantee: ``exactly_once`` means the agent path (see the module)."""
    datadir: Path | None = None
    batch_size: int = 1000
    batch_within_s: float = 0.05
    web_port: int | None = None
    web_host: str = DEFAULT_HOST
    """Where the web port listens (loopback unless the operator says otherwise)."""
    session_timeout_s: float = 60.0
    """How long the group waits for a silent worker (a crash) before moving its partitions."""
    demo_broker: bool | None = None
    """Whether the brokers are a demo broker (databus.sandbox); None: ask them."""
    batch_path: bool = True
    """Take fetches straight from the consumer (unless Faust's own ``processing_guarantee``
    is ``exactly_once``); see the module."""
    replication_factor: int = 1
    """Replicas of the topics the worker creates itself (its changelog, Faust's leader
    topic): the cluster's (:func:`databus.ops.topics.cluster_replication`)."""

    @property
    def uses_batch_path(self) -> bool:
        return self.batch_path and self.processing_guarantee == "at_least_once"


class _TableStore:
    """The :class:`~databus.streams.processor.StateStore` view of a Faust table."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._table.get(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._table[key] = value

    def items(self) -> Iterable[tuple[bytes, bytes]]:
        items: Iterable[tuple[bytes, bytes]] = self._table.items()
        return items


def broker_urls(bootstrap_servers: str) -> list[str]:
    """Faust's broker URLs from a Kafka bootstrap list."""
    return [f"kafka://{host.strip()}" for host in bootstrap_servers.split(",") if host.strip()]


class DecisionEngine:
    """One Faust app with the decision agent; ``engine.app`` is what a worker runs."""

    def __init__(
        self,
        settings: Settings,
        policy: Policy,
        options: EngineOptions | None = None,
        *,
        catalog: Catalog = CATALOG,
    ) -> None:
        self.options = options or EngineOptions()
        self.settings = settings
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        app_settings: dict[str, Any] = {
            "broker": broker_urls(settings.bootstrap_servers),
            "store": self.options.store,
            "processing_guarantee": self.options.processing_guarantee,
            "topic_partitions": settings.partitions,
            "topic_replication_factor": self.options.replication_factor,
            "topic_allow_declare": True,
            "consumer_auto_offset_reset": "earliest",
            # Keys and values are our own bytes everywhere (topics and the table).
            "key_serializer": "raw",
            "value_serializer": "raw",
            "producer_linger": 0.01,
            "broker_session_timeout": self.options.session_timeout_s,
            "broker_heartbeat_interval": min(3.0, self.options.session_timeout_s / 3),
            "web_enabled": self.options.web_port is not None,
            "web_port": self.options.web_port or 6066,
            "web_bind": self.options.web_host,
            # None of Faust's own pages (streams/web.py); these flags say so twice.
            "web_tables_enabled": False,
            "web_router_enabled": False,
            "web_stats_enabled": False,
            "web_graph_enabled": False,
            "web_metrics_enabled": False,
            **faust_broker_settings(settings),  # SASL/TLS credentials (governance issue)
        }
        if self.options.datadir is not None:
            app_settings["datadir"] = str(self.options.datadir)
        self.app = BatchApp(self.options.app_id, **app_settings)
        inputs = [d.topic for d in catalog.sources()] + [CLOCK.topic]
        self.topics = frozenset(inputs)
        self.barriers = frozenset({CLOCK.topic})
        self.inputs = self.app.topic(*inputs, key_serializer="raw", value_serializer="raw")
        self.state = PersonTable(
            self.app,
            name=STATE_TABLE,
            partitions=settings.partitions,
            key_type=bytes,
            value_type=bytes,
            use_partitioner=True,
        )
        self.app.tables.add(self.state)
        self._direct = DirectState(self.state)
        self._output: BatchOutput | TransactionalOutput
        if self.options.uses_batch_path and self.options.guarantee == "exactly_once":
            self._output = TransactionalOutput(
                settings,
                self.state,
                self._direct,
                prefix=self.options.app_id,
                group_id=self.options.app_id,
                on_failed=self._on_failed,
            )
        else:
            self._output = BatchOutput(settings, self.state, self._direct)
        self.commits_offsets = isinstance(self._output, TransactionalOutput)
        store: Any = _TableStore(self.state)
        if self.options.uses_batch_path:
            store = self._direct
            self.app.batch_handler = self
            self.app.on_before_shutdown.connect(self._stop_output)
        # Faust's messages (the agent path) carry seconds, aiokafka's records milliseconds.
        per_second = 1000 if self.options.uses_batch_path else 1
        self.processor = DecisionProcessor(
            store, policy, settings.partitions, timestamps_per_second=per_second
        )
        metrics.track_state_size(self.persons_in_state)
        if self.options.web_port is not None:
            add_operator_routes(self.app)
        self._topics = {
            dataset.name: self.app.topic(
                dataset.topic, key_serializer="raw", value_serializer="raw", internal=False
            )
            for dataset in catalog
            if dataset.name.startswith("derived.") or dataset is DLQ
        }
        self._encoders = {name: Encoder(catalog.get(name), "databus") for name in self._topics}
        self._broker_known = False
        if self.options.demo_broker is not None:
            self._set_demo(self.options.demo_broker)
        self.agent = self.app.agent(self.inputs, name="decide")(self._decide)
        self.app.on_partitions_revoked.connect(self._on_revoked)

    async def _on_revoked(
        self, sender: Any, /, *args: Any, signal: Any = None, **kwargs: Any
    ) -> None:
        """Forget the due index of partitions that leave this worker: if they come back,
        other workers may have changed their persons, so it is rebuilt from the table."""
        revoked: Iterable[Any] = args[0] if args else kwargs.get("revoked", ())
        partitions = {tp.partition for tp in revoked}
        if isinstance(self._output, TransactionalOutput):
            await self._output.drain(partitions)
        self.processor.forget_partitions(partitions)
        self._output.forget_partitions(partitions)
        self._direct.forget_partitions(partitions)

    async def _stop_output(
        self, sender: Any, /, *args: Any, signal: Any = None, **kwargs: Any
    ) -> None:
        await self._output.stop()

    async def handle(self, records: Sequence[Any]) -> Awaitable[None]:
        """The batch path: process one fetch and queue its output (see the module)."""
        await self._learn_broker()
        output = self.processor.process(records)
        changes = self._direct.take_changes()
        delivered: Awaitable[bool | None]
        if isinstance(self._output, TransactionalOutput):
            messages = self.messages_by_partition(output)
            delivered = await self._output.write(changes, messages, _next_offsets(records))
        else:
            delivered = await self._output.write(changes, self.messages(output))
        return _observed(delivered, output, _sampled_timestamps(records, per_second=1000))

    async def on_assigned(self, assigned: set[Any]) -> None:
        """Before Faust recovers the table for a new assignment: a transactional writer
        per input partition held (fencing each one's previous owner)."""
        if isinstance(self._output, TransactionalOutput):
            await self._output.assign({tp.partition for tp in assigned if tp.topic in self.topics})

    async def visible_ends(self, ends: Mapping[Any, int]) -> dict[Any, int]:
        """The changelog's end offsets as Faust's recovery counts them: after the last
        record a read_committed reader receives (:mod:`databus.runtime.offsets`)."""
        found = await visible_ends(
            self.settings, {TopicPartition(tp.topic, tp.partition): end for tp, end in ends.items()}
        )
        return {tp: found[TopicPartition(tp.topic, tp.partition)] for tp in ends}

    def _on_failed(self, partition: int) -> None:
        """A partition's transaction failed: a rebalance takes every partition again
        from its committed offsets and recovered state."""
        self.processor.forget_partitions([partition])
        consumer = self.app.consumer
        rejoin = getattr(consumer, "rejoin", None)
        if rejoin is not None:
            rejoin()

    async def _learn_broker(self) -> None:
        """Ask the brokers once whether they are a demo broker (databus.sandbox)."""
        if self._broker_known:
            return
        if isinstance(self._output, TransactionalOutput):
            client = self._output.client()
        else:
            client = (await self._output.started()).client
        self._set_demo(is_demo_cluster(await cluster_id(client)))

    def _set_demo(self, demo: bool) -> None:
        self.processor.demo_broker = demo
        metrics.WORKER_DEMO_BROKER.set(1 if demo else 0)
        if demo:
            log.warning(
                "this is a demo broker: the public demo key and records dated in the "
                "future are accepted (never use it for real data)"
            )
        self._broker_known = True

    def persons_in_state(self) -> float:
        """Persons in the partitions this worker holds (not its standby copies)."""
        store = self.state.data
        if isinstance(store, PersonStore):
            return float(store.persons_held())
        return float(len(store))

    async def _decide(self, stream: Any) -> AsyncIterator[int]:
        batches = stream.take_events(self.options.batch_size, self.options.batch_within_s)
        async for events in batches:
            await self._learn_broker()
            messages = [event.message for event in events]
            output = self.processor.process(messages)
            self.emit(output)
            count(output)
            metrics.observe_since(_sampled_timestamps(messages, per_second=1))
            yield len(events)

    def messages(self, output: Output) -> list[Message]:
        """The derived events and dead letters of a batch's output, encoded."""
        messages = []
        for decision in output.decisions:
            record = decision.record.model_dump(mode="json")
            messages.append(
                self._encoders[decision.dataset].encode(
                    record, subject=record.get("person_ref"), event_id=decision.id
                )
            )
        messages += [d.rejection.to_message(source="databus-worker") for d in output.dead_letters]
        return messages

    def messages_by_partition(self, output: Output) -> dict[int, list[Message]]:
        """The derived events (by their person's partition) and dead letters (by their
        input message's) of a batch's output, encoded."""
        by_partition: dict[int, list[Message]] = {}
        partitions = self.settings.partitions
        for decision in output.decisions:
            record = decision.record.model_dump(mode="json")
            message = self._encoders[decision.dataset].encode(
                record, subject=record.get("person_ref"), event_id=decision.id
            )
            partition = default_partition(message.key or b"", partitions)
            by_partition.setdefault(partition, []).append(message)
        for letter in output.dead_letters:
            message = letter.rejection.to_message(source="databus-worker")
            by_partition.setdefault(letter.partition, []).append(message)
        return by_partition

    def emit(self, output: Output) -> None:
        """The agent path: queue the output on Faust's producer (flushed before commit)."""
        for message in self.messages(output):
            self._topics[message.topic].send_soon(
                key=message.key, value=message.value, headers=message.headers
            )


def count(output: Output) -> None:
    """Add a batch's output to the worker's counters."""
    for dataset, events in output.events_in.items():
        metrics.WORKER_EVENTS.labels(dataset).inc(events)
    for decision in output.decisions:
        record = decision.record
        kind = getattr(record, "decision", None) or getattr(record, "kind", "other")
        metrics.WORKER_DECISIONS.labels(decision.dataset, kind).inc()
    for letter in output.dead_letters:
        metrics.WORKER_DEAD_LETTERS.labels(letter.rejection.dataset, letter.reason).inc()
    if output.ticks:
        metrics.WORKER_EVENTS.labels(CLOCK.name).inc(output.ticks)
        metrics.WORKER_LAST_TICK.set_to_current_time()
    for kind, ticks in output.tick_kinds.items():
        metrics.WORKER_TICKS.labels(kind).inc(ticks)


#: Messages of a fetch whose latency is observed (evenly spread, plus the last).
LATENCY_SAMPLES = 8


def _sampled_timestamps(records: Sequence[Any], *, per_second: int) -> list[float]:
    """Kafka timestamps (Unix seconds) of a sample of ``records``, whose own timestamps
    are in 1/``per_second`` s (aiokafka: milliseconds; Faust messages: seconds)."""
    if not records:
        return []
    step = max(1, len(records) // LATENCY_SAMPLES)
    sample = [*records[::step], records[-1]]
    return [r.timestamp / per_second for r in sample if r.timestamp is not None]


def _next_offsets(records: Sequence[Any]) -> dict[int, dict[TopicPartition, int]]:
    """By partition: the offset after the last of ``records`` of each topic-partition."""
    offsets: dict[int, dict[TopicPartition, int]] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        mine = offsets.setdefault(record.partition, {})
        if record.offset + 1 > mine.get(tp, 0):
            mine[tp] = record.offset + 1
    return offsets


async def _observed(
    delivered: Awaitable[bool | None], output: Output, timestamps: list[float]
) -> None:
    """Count a batch's output once it is delivered (not when its transaction failed:
    it is read and decided again)."""
    if await delivered is False:
        return
    count(output)
    metrics.observe_since(timestamps)
