"""The four decision workers that ``decisions_throughput.py`` compares, one per process.

    python bench/decision_workers.py ours  --app-id ID --data-dir DIR [--profile-out F
                                            --profile-events N]
    python bench/decision_workers.py agent --app-id ID --data-dir DIR
    python bench/decision_workers.py naive --app-id ID --data-dir DIR
    python bench/decision_workers.py raw   --app-id ID

Connection settings come from the ``DATABUS_*`` variables, as for ``databus worker``.

* ``ours``: the shipped :class:`~databus.streams.app.DecisionEngine` run by
  :func:`~databus.streams.worker.run_worker` (RocksDB ``PersonStore``), exactly as
  ``databus worker`` runs it except for the app id (consumer group, changelog topic),
  which the CLI does not expose. With ``--profile-out`` the process profiles itself with
  cProfile from its first batch until ``--profile-events`` events have been handled,
  writes the stats and stops.
* ``agent``: the same engine on Faust's agent path (``batch_path=False``: a
  ``take_events`` agent, table writes and sends through Faust), as the worker ran
  before the batch path.
* ``naive``: the straightforward Faust agent: ``async for event in stream.events()``,
  one event per iteration, ``wire.decode``, the same rules, a plain Faust ``Table``
  (``rocksdb://``) of ``PersonState`` bytes written per event, ``await topic.send`` per
  decision. App settings are the engine's (raw serializers, producer linger, quiet
  loggers), so the comparison is about the agent's shape, not tuning.
* ``raw``: no Faust: ``AIOKafkaConsumer.getmany(1000)`` → ``DecisionProcessor`` on a
  dict → ``AIOKafkaProducer``, committing about once a second, no changelog. It stops at
  the end offsets it saw when it started and prints its timing as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faust
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from databus.catalog import CATALOG, CLOCK
from databus.errors import DecodeError
from databus.rules import Observation, PersonState, Policy, load_policy, on_event
from databus.runtime.producers import producer_options
from databus.settings import Settings
from databus.streams.app import (
    NOISY_LOGGERS,
    DecisionEngine,
    EngineOptions,
    Guarantee,
    broker_urls,
)
from databus.streams.names import STATE_TABLE
from databus.streams.processor import DecisionProcessor, Output
from databus.streams.worker import run_worker
from databus.wire import Encoder, Message, decode

log = logging.getLogger("bench.decision_workers")

#: The topics every variant reads: the agencies' datasets and the clock, as the engine.
INPUT_TOPICS = [d.topic for d in CATALOG.sources()] + [CLOCK.topic]
DERIVED = [d.name for d in CATALOG if d.name.startswith("derived.")]
#: How often the raw variant commits (Faust's default commit interval is 2.8 s).
RAW_COMMIT_EVERY_S = 1.0


def encoders() -> dict[str, Encoder]:
    """One encoder per derived dataset, as the engine builds them."""
    return {name: Encoder(CATALOG.get(name), "databus") for name in DERIVED}


def decision_messages(output: Output, encoder: dict[str, Encoder]) -> list[Message]:
    """The derived events of one batch, encoded as ``DecisionEngine.emit`` encodes them."""
    messages = []
    for decision in output.decisions:
        record = decision.record.model_dump(mode="json")
        messages.append(
            encoder[decision.dataset].encode(
                record, subject=record.get("person_ref"), event_id=decision.id
            )
        )
    return messages


# --- ours -------------------------------------------------------------------------------


class ProfiledProcessor:
    """Wraps the engine's processor: cProfile from the first batch until the start of the
    first batch after ``limit`` events, then the stats go to ``out`` (with the window's
    event count and wall time) and the worker stops itself."""

    def __init__(self, inner: DecisionProcessor, out: Path, limit: int) -> None:
        self._inner = inner
        self._out = out
        self._limit = limit
        self._profiler = cProfile.Profile()
        self._events = 0
        self._started = 0.0
        self._done = False

    def process(self, messages: Sequence[Any]) -> Output:
        if self._done:
            return self._inner.process(messages)
        if self._events == 0:
            self._started = time.perf_counter()
            self._profiler.enable()
        elif self._events >= self._limit:
            # Stop at the start of the next batch, so that the window also holds the
            # writing of the last batch's output and the next fetch.
            self._profiler.disable()
            self._done = True
            wall = time.perf_counter() - self._started
            self._profiler.dump_stats(self._out)
            meta = {"events": self._events, "wall_s": wall}
            self._out.with_suffix(".json").write_bytes(orjson.dumps(meta))
            os.kill(os.getpid(), signal.SIGTERM)
            return self._inner.process(messages)
        output = self._inner.process(messages)
        self._events += len(messages)
        return output

    def forget_partitions(self, partitions: Any) -> None:
        self._inner.forget_partitions(partitions)


def run_ours(
    settings: Settings,
    app_id: str,
    data_dir: Path,
    profile_out: Path | None,
    limit: int,
    *,
    batch_path: bool = True,
    guarantee: Guarantee = "exactly_once",
) -> None:
    policy = load_policy(settings.policy_file)
    options = EngineOptions(
        app_id=app_id, datadir=data_dir, batch_path=batch_path, guarantee=guarantee
    )
    if profile_out is None:
        run_worker(settings, policy, options)
        return
    # What run_worker does, with the processor wrapped.
    engine = DecisionEngine(settings, policy, options)
    engine.processor = ProfiledProcessor(engine.processor, profile_out, limit)  # type: ignore[assignment]
    faust.Worker(engine.app, loglevel="WARNING", quiet=True).execute_from_commandline()


# --- naive ------------------------------------------------------------------------------


def naive_app(settings: Settings, policy: Policy, app_id: str, data_dir: Path) -> faust.App:
    """A Faust app whose agent handles one event per iteration (the straightforward way)."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    app = faust.App(
        app_id,
        broker=broker_urls(settings.bootstrap_servers),
        store="rocksdb://",
        datadir=str(data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor or 1,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        producer_linger=0.01,
        web_enabled=False,
    )
    inputs = app.topic(*INPUT_TOPICS, key_serializer="raw", value_serializer="raw")
    table = app.Table(STATE_TABLE, partitions=settings.partitions, key_type=bytes, value_type=bytes)
    outputs = {
        name: app.topic(
            CATALOG.get(name).topic, key_serializer="raw", value_serializer="raw", internal=False
        )
        for name in DERIVED
    }
    encoder = encoders()

    @app.agent(inputs, name="decide")
    async def decide(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            if message.topic == CLOCK.topic:
                continue  # the benchmark publishes no ticks
            try:
                decoded = decode(message)
            except DecodeError as error:
                log.warning("skipping %s", error)
                continue
            person_ref: str = decoded.record.person_ref  # type: ignore[attr-defined]
            key = person_ref.encode()
            stored = table.get(key)
            state = PersonState.from_bytes(stored) if stored else PersonState.empty(person_ref)
            observation = Observation(decoded.envelope.id, decoded.envelope.type, decoded.record)
            state, decisions = on_event(state, observation, policy)
            table[key] = state.to_bytes()
            for decision in decisions:
                record = decision.record.model_dump(mode="json")
                out = encoder[decision.dataset].encode(
                    record, subject=person_ref, event_id=decision.id
                )
                await outputs[decision.dataset].send(
                    key=out.key, value=out.value, headers=out.headers
                )

    return app


def run_naive(settings: Settings, app_id: str, data_dir: Path) -> None:
    app = naive_app(settings, load_policy(settings.policy_file), app_id, data_dir)
    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


# --- raw --------------------------------------------------------------------------------


async def run_raw(settings: Settings, group: str) -> dict[str, float]:
    """Consume everything up to the current end offsets; returns the timing."""
    consumer = AIOKafkaConsumer(
        *INPUT_TOPICS,
        **settings.kafka_client_options(),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(**producer_options(settings))
    await consumer.start()
    await producer.start()
    try:
        partitions = [
            TopicPartition(topic, p) for topic in INPUT_TOPICS for p in range(settings.partitions)
        ]
        ends = {tp: end for tp, end in (await consumer.end_offsets(partitions)).items() if end}
        processor = DecisionProcessor({}, load_policy(settings.policy_file), settings.partitions)
        encoder = encoders()
        positions: dict[TopicPartition, int] = {}
        pending: list[asyncio.Future[Any]] = []
        events = 0
        first = 0.0
        committed = time.monotonic()
        while any(positions.get(tp, 0) < end for tp, end in ends.items()):
            batches = await consumer.getmany(timeout_ms=1000, max_records=1000)
            messages = [m for records in batches.values() for m in records]
            if not messages:
                continue
            if not first:
                first = time.time()
            events += len(messages)
            for tp, records in batches.items():
                positions[tp] = records[-1].offset + 1
            pending += [
                await producer.send(m.topic, m.value, key=m.key, headers=m.headers)
                for m in decision_messages(processor.process(messages), encoder)
            ]
            if time.monotonic() - committed >= RAW_COMMIT_EVERY_S:
                await asyncio.gather(*pending)
                pending.clear()
                await consumer.commit()
                committed = time.monotonic()
        await asyncio.gather(*pending)
        await consumer.commit()
        return {"events": events, "first": first, "last": time.time()}
    finally:
        await producer.stop()
        await consumer.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("variant", choices=("ours", "alo", "agent", "naive", "raw"))
    parser.add_argument("--app-id", required=True, help="app id / consumer group")
    parser.add_argument("--data-dir", type=Path, help="RocksDB directory (ours, naive)")
    parser.add_argument("--profile-out", type=Path, help="ours: write cProfile stats here")
    parser.add_argument("--profile-events", type=int, default=50_000)
    args = parser.parse_args(argv)
    settings = Settings()
    if args.variant == "raw":
        print(orjson.dumps(asyncio.run(run_raw(settings, args.app_id))).decode(), flush=True)
        return
    if args.data_dir is None:
        parser.error(f"{args.variant} needs --data-dir")
    if args.variant in ("ours", "alo", "agent"):
        run_ours(
            settings, args.app_id, args.data_dir, args.profile_out, args.profile_events,
            batch_path=args.variant != "agent",
            guarantee="at_least_once" if args.variant == "alo" else "exactly_once",
        )  # fmt: skip
    else:
        run_naive(settings, args.app_id, args.data_dir)


if __name__ == "__main__":
    main()
