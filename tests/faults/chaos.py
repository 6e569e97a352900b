"""Driving a real decision worker through a scenario, with SIGKILLs at chosen moments.

The worker is ``databus worker`` in its own process group. After each step the driver
waits until the worker's consumer group has committed the step's offsets: the worker
commits a batch's input offsets in the transaction that holds its decisions and state
(exactly-once), so a committed step is a finished one. Each kill waits, after its
random delay, until one of the worker's transactions is open (written, not committed),
so that it lands between a send and its commit; the restarted worker fences the dead
one's transactions, reads the step again from the commit, possibly after losing its
local RocksDB state.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from databus.client.batching import PartitionBatches
from databus.runtime.producers import producer_options
from databus.settings import Settings
from databus.streams.names import APP_ID, changelog_topic
from tests.faults.scenario import Scenario, Step

#: The shortest session timeout Kafka accepts by default (``group.min.session.timeout.ms``):
#: a killed worker's partitions are handed to its successor after at most this long.
SESSION_TIMEOUT_S = 6
#: Faust commits acknowledged offsets every 2.8 s by default; the driver waits for a
#: commit after every step, so the worker under test commits every 0.2 s (Faust reads
#: ``BROKER_COMMIT_INTERVAL`` from the environment). A crash replays what was processed
#: since the last commit, so this also bounds the duplicates.
COMMIT_INTERVAL_S = 0.2
#: After a kill's delay, how long the driver waits for one of the worker's transactions
#: to be open (records written, no commit yet) before it kills anyway.
OPEN_TRANSACTION_WAIT_S = 2.0
#: About how many events a second the worker decides (docs/benchmarks.md), to aim kills
#: at the time a step is being processed.
WORKER_EVENTS_PER_S = 15_000
CATCH_UP_LIMIT_S = 180.0


class WorkerProcess:
    """``databus worker`` as a process of its own, started, killed and restarted."""

    def __init__(self, settings: Settings, data_dir: Path, log_path: Path, *extra: str) -> None:
        self.settings = settings
        self.extra = extra
        """More ``databus worker`` options (``--web-port P``, say)."""
        self.data_dir = data_dir
        self.log_path = log_path
        self.starts = 0
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start a worker (it joins the group and recovers its table)."""
        assert self._process is None or self._process.poll() is not None
        key = self.settings.pseudonym_key
        env = os.environ | {
            "DATABUS_BOOTSTRAP_SERVERS": self.settings.bootstrap_servers,
            "DATABUS_PSEUDONYM_KEY": key.get_secret_value() if key else "",
            "DATABUS_PARTITIONS": str(self.settings.partitions),
            "BROKER_COMMIT_INTERVAL": str(COMMIT_INTERVAL_S),
        }
        verbose = ["-v"] if os.environ.get("DATABUS_FAULT_VERBOSE") else []
        command = [sys.executable, "-m", "databus", *verbose, "worker"]
        command += ["--data-dir", str(self.data_dir)]
        command += ["--session-timeout", str(SESSION_TIMEOUT_S), *self.extra]
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts + 1}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.starts += 1

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """SIGKILL to the worker's process group: a crash, nothing is flushed."""
        self._signal(signal.SIGKILL, wait_s=30)

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), SIGKILL if it does not end within a minute."""
        try:
            self._signal(signal.SIGTERM, wait_s=60)
        except subprocess.TimeoutExpired:
            self.kill()

    def pause(self) -> None:
        """SIGSTOP the worker's process group: it stops dead, its connections stay open."""
        self._send(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: a paused worker goes on where it stopped, unaware of the time passed."""
        self._send(signal.SIGCONT)

    def _send(self, sig: signal.Signals) -> None:
        assert self._process is not None
        assert self._process.poll() is None
        os.killpg(self._process.pid, sig)

    def dump_stacks(self) -> None:
        """Ask the worker to log the stack of every task and thread (mode's SIGUSR1
        handler), for a test that found it stuck."""
        if self.alive() and self._process is not None:
            os.kill(self._process.pid, signal.SIGUSR1)
            time.sleep(3)

    def wipe(self) -> None:
        """Delete the worker's local state (its RocksDB databases)."""
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no worker log)"
        return "\n".join(text.splitlines()[-lines:])

    def _signal(self, sig: signal.Signals, *, wait_s: float) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            os.killpg(process.pid, sig)
        process.wait(timeout=wait_s)


@dataclass(frozen=True)
class Kill:
    """SIGKILL the worker ``delay_s`` after step ``step`` is on the bus."""

    step: int
    delay_s: float
    wipe: bool
    """Delete the local RocksDB state before the restart (recover from the changelog)."""


@dataclass(frozen=True)
class KillOutcome:
    kill: Kill
    mid_step: bool
    """The worker had not committed the whole step when it was killed."""
    in_transaction: bool
    """A transaction of the worker's was open (sent, not committed) just before the kill."""
    recovered_s: float
    """From the kill until the restarted worker had committed the step."""


@dataclass
class RunReport:
    seconds: float = 0.0
    kills: list[KillOutcome] = field(default_factory=list)
    worker_starts: int = 0


def choose_kills(scenario: Scenario, count: int, seed: int) -> list[Kill]:
    """``count`` kills at distinct steps, drawn in proportion to their size (a random
    point of the event stream), each at a random moment while the worker should be
    busy with it; half of them lose the local state."""
    rng = random.Random(seed)
    steps = scenario.steps
    # Weighted sampling without replacement (Efraimidis and Spirakis).
    keys = sorted(range(len(steps)), key=lambda i: rng.random() ** (1 / len(steps[i].messages)))
    chosen = sorted(keys[-count:])
    wipes = [n % 2 == 0 for n in range(count)]
    rng.shuffle(wipes)
    return [
        Kill(step, rng.uniform(0.0, len(steps[step].messages) / WORKER_EVENTS_PER_S), wipe)
        for step, wipe in zip(chosen, wipes, strict=True)
    ]


async def drive(
    settings: Settings, scenario: Scenario, worker: WorkerProcess, kills: list[Kill]
) -> RunReport:
    """Publish the scenario step by step to a running worker, killing it as planned."""
    planned: dict[int, list[Kill]] = defaultdict(list)
    for kill in kills:
        planned[kill.step].append(kill)
    report = RunReport()
    started = time.monotonic()
    producer = AIOKafkaProducer(**producer_options(settings))
    consumer = AIOKafkaConsumer(**settings.kafka_client_options(), group_id=None)
    stable = AIOKafkaConsumer(
        **settings.kafka_client_options(), group_id=None, isolation_level="read_committed"
    )
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await asyncio.gather(producer.start(), consumer.start(), stable.start(), admin.start())
    changelog = [TopicPartition(changelog_topic(), p) for p in range(settings.partitions)]
    worker.start()
    try:
        for index, step in enumerate(scenario.steps):
            ends = await publish(producer, consumer, step, settings.partitions)
            for kill in planned[index]:
                await asyncio.sleep(kill.delay_s)
                in_transaction = await transaction_open(consumer, stable, changelog)
                killed = time.monotonic()
                await asyncio.to_thread(worker.kill)
                mid_step = not await committed(admin, ends)
                if kill.wipe:
                    worker.wipe()
                worker.start()
                await wait_until_committed(admin, ends, worker)
                recovered = time.monotonic() - killed
                report.kills.append(KillOutcome(kill, mid_step, in_transaction, recovered))
            await wait_until_committed(admin, ends, worker)
    finally:
        await asyncio.gather(producer.stop(), consumer.stop(), stable.stop(), admin.close())
        await asyncio.to_thread(worker.stop)
    report.seconds = time.monotonic() - started
    report.worker_starts = worker.starts
    return report


async def transaction_open(
    consumer: AIOKafkaConsumer,
    stable: AIOKafkaConsumer,
    tps: list[TopicPartition],
    *,
    wait_s: float = OPEN_TRANSACTION_WAIT_S,
) -> bool:
    """Return as soon as a partition of ``tps`` has records of an open transaction (its
    high watermark beyond its last stable offset), or after ``wait_s`` (False): a kill
    then lands between a transaction's send and its commit."""
    deadline = time.monotonic() + wait_s
    if tps[0].topic not in await consumer.topics():
        return False  # the worker has not written its changelog yet
    while True:
        last_stable = await stable.end_offsets(tps)
        high = await consumer.end_offsets(tps)
        if any(high[tp] > last_stable[tp] for tp in tps):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.002)


async def publish(
    producer: AIOKafkaProducer, consumer: AIOKafkaConsumer, step: Step, partitions: int
) -> dict[TopicPartition, int]:
    """Send a step and wait for Kafka's acknowledgement; returns the end offsets of the
    step's topic."""
    keyed = [placed for placed in step.messages if placed.message.key is not None]
    batches = PartitionBatches(producer, step.topic, set(range(partitions)))
    for placed in keyed:
        full = batches.add(placed.message)
        if full is not None:
            await batches.send(full)
    await batches.flush()
    pending = list(batches.sent)
    for placed in step.messages:
        if placed.message.key is None:
            message = placed.message
            pending.append(
                await producer.send(
                    step.topic, message.value, partition=placed.partition, headers=message.headers
                )
            )
    await asyncio.gather(*pending)
    tps = [TopicPartition(step.topic, partition) for partition in range(partitions)]
    ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
    return ends


async def committed(admin: AIOKafkaAdminClient, ends: dict[TopicPartition, int]) -> bool:
    """Whether the worker's group has committed up to ``ends``."""
    try:
        offsets = await admin.list_consumer_group_offsets(APP_ID, partitions=list(ends))
    except KafkaError:  # the group coordinator is not there yet (a young broker)
        return False
    return all(tp in offsets and offsets[tp].offset >= end for tp, end in ends.items() if end > 0)


async def wait_until_committed(
    admin: AIOKafkaAdminClient, ends: dict[TopicPartition, int], worker: WorkerProcess
) -> None:
    deadline = time.monotonic() + CATCH_UP_LIMIT_S
    while not await committed(admin, ends):
        if not worker.alive():
            raise AssertionError(f"the worker died by itself:\n{worker.log_tail()}")
        if time.monotonic() > deadline:
            offsets = await admin.list_consumer_group_offsets(APP_ID, partitions=list(ends))
            behind = {
                f"{tp.topic}[{tp.partition}]": (offsets[tp].offset if tp in offsets else None, end)
                for tp, end in sorted(ends.items())
            }
            await asyncio.to_thread(worker.dump_stacks)
            raise AssertionError(
                f"the worker did not commit within {CATCH_UP_LIMIT_S:.0f}s (committed, end): "
                f"{behind}\n{worker.log_tail(400)}"
            )
        await asyncio.sleep(0.05)
