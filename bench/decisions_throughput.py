"""Decision throughput: evidence through the pension agent, Kafka in → decisions out.

One run measures, against the same pre-loaded backlog and with one worker each:

* ``ours``: the shipped ``DecisionEngine`` (batch path, RocksDB ``PersonStore``), with
  its default exactly-once output (one transaction per input partition and batch);
* ``alo``: the same with ``--guarantee at-least-once`` (the baseline exactly-once is
  measured against);
* ``agent``: the same engine on Faust's agent path (``take_events``, arrival order), as
  it ran before the batch path;
* ``naive``: a Faust agent that handles one event per iteration with the same rules;
* ``raw``: aiokafka ``getmany(1000)`` → ``DecisionProcessor`` on a dict → producer, no
  Faust and no changelog: the ceiling.

The backlog is N ``hrss.pensioner.v1`` records (active, benefit start 2026-01-01, so
nobody is due for a tick) followed by E evidence events spread over those pensioners,
published with ``Publisher.publish_many`` before any worker starts: 60 %
``health.hospital_visit.v1`` with a verified identity (strong) and 40 %
``transport.transit_tap.v1`` without (weak), each pensioner's evidence within 30 days
and the first of it strong, so every pensioner gets exactly one ``confirmed`` whatever
order the topics are read in. Each variant and round runs as a fresh process with a
fresh app id (consumer group, changelog, data dir) and so reprocesses the whole backlog.
A Faust variant's processing window runs from its first to its last changelog write
(Kafka CreateTime); the raw variant times itself from its first fetched batch to its
final commit. Rounds are interleaved and their order rotates.

Then the engine of round 1 (``ours``) is restarted (caught up) for the latency test:
evidence for
distinct pensioners, each yielding a ``confirmed``, is sent at a steady rate, and the
time from ``send()`` to the decision arriving at a consumer of
``derived.pension_status.v1`` is recorded per event. Last, with ``--profile``, the
engine profiles itself with cProfile over the first ``--profile-events`` events of a
fresh run (see ``decision_workers.py``).

Unless ``--bootstrap`` is given (an empty broker), a LocalBroker is started on free
ports in a temporary directory (reusing the jar cache) and stopped at the end.

    .venv/bin/python bench/decisions_throughput.py [--events E] [--pensioners N]
        [--rounds R] [--rate EVENTS_PER_S] [--latency-seconds S] [--profile]
        [--profile-events K] [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from databus.catalog import CATALOG
from databus.client.files import Line
from databus.client.intake import Intake
from databus.client.publisher import Publisher
from databus.identity import Pseudonymizer
from databus.internals import kafka_client
from databus.ops.topics import apply_topics
from databus.runtime.offsets import visible_ends
from databus.runtime.producers import producer_options
from databus.settings import Settings
from databus.streams.names import changelog_topic
from databus.wire import Message
from publish_throughput import broker, log, machine, short_path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.factories import make_citizen_id, sample_input  # noqa: E402

WORKERS = Path(__file__).with_name("decision_workers.py")
PSEUDONYM_KEY = "bench-only-pseudonym-key-at-least-32-bytes"
PENSIONER = "hrss.pensioner.v1"
HOSPITAL = "health.hospital_visit.v1"
TRANSIT = "transport.transit_tap.v1"
DECISIONS = "derived.pension_status.v1"
DERIVED_TOPICS = [CATALOG.get(d.name).topic for d in CATALOG if d.name.startswith("derived.")]
VARIANTS = ("ours", "alo", "agent", "naive", "raw")
LABELS = {
    "ours": "(1) ours: `DecisionEngine` batch path, RocksDB `PersonStore`, exactly-once",
    "alo": "(1a) ours with `--guarantee at-least-once`",
    "agent": "(1b) ours on Faust's agent path (`take_events`, arrival order)",
    "naive": "(2) naive Faust agent, one event per iteration",
    "raw": "(3) raw aiokafka `getmany(1000)` → `DecisionProcessor` on a dict",
}
TARGET_RATE = 10_000
TIMES = "\N{MULTIPLICATION SIGN}"
TARGET_NAIVE_RATIO = 4.0
REGIONS = ("370102", "370103", "370104", "370105", "370112", "370113")
FIRST_BIRTHDAY = dt.date(1940, 1, 1)
BENEFIT_START = "2026-01-01"
#: Day of the first backlog evidence; a pensioner's backlog evidence lies within 30 days.
EVIDENCE_START = dt.date(2026, 3, 2)
#: Latency evidence starts this many days after EVIDENCE_START, then one cycle (31 days,
#: past the 30-day confirmation quiet period) per pass over the pensioners.
LATENCY_START_DAYS = 60
LATENCY_CYCLE_DAYS = 31
#: Latency events sent (and their decisions awaited) before the timed window.
LATENCY_WARMUP = 200
WORKER_LIMIT_S = 600.0
POLL_S = 0.2


@dataclass(frozen=True)
class Backlog:
    """What was pre-loaded: input records per dataset and the decisions they must yield."""

    counts: dict[str, int]
    expected_decisions: int

    @property
    def events(self) -> int:
        return sum(self.counts.values())

    @property
    def topics(self) -> list[str]:
        return [CATALOG.get(name).topic for name in self.counts]


@dataclass(frozen=True)
class Run:
    """One variant over the backlog."""

    events: int
    window_s: float
    """First to last changelog write (Faust variants); first batch to final commit (raw)."""
    start_to_caught_up_s: float
    """From launching the process until its group had committed the whole backlog."""
    decisions: int
    state_writes: int | None = None
    """Records in the state changelog (Faust variants): how often a batch wrote a person."""

    @property
    def rate(self) -> float:
        return self.events / self.window_s


@dataclass
class Results:
    runs: dict[str, list[Run]] = field(default_factory=lambda: {v: [] for v in VARIANTS})

    def ratios(self, baseline: str) -> list[float]:
        return [
            ours.rate / base.rate
            for ours, base in zip(self.runs["ours"], self.runs[baseline], strict=True)
        ]

    def median_rate(self, variant: str) -> float:
        return statistics.median(run.rate for run in self.runs[variant])


# --- input ------------------------------------------------------------------------------


def citizen_id(person: int) -> str:
    """A distinct valid ID number per person index (birth day and sequence from it)."""
    born = FIRST_BIRTHDAY + dt.timedelta(days=person // 997)
    return make_citizen_id(REGIONS[person % len(REGIONS)], born, person % 997 + 1)


def line(number: int, record: dict[str, Any]) -> Line:
    return Line(number, orjson.dumps(record))


def pensioner_lines(count: int) -> list[Line]:
    return [
        line(
            person + 1,
            sample_input(
                PENSIONER,
                citizen_id(person),
                occurred_at="2026-01-05T09:00:00+08:00",
                pensioner_account=f"PA-{person:07d}",
                benefit_start=BENEFIT_START,
            ),
        )
        for person in range(count)
    ]


def hospital_visit(number: int, person: int, day: dt.date, visit_id: str) -> Line:
    return line(
        number,
        sample_input(
            HOSPITAL,
            citizen_id(person),
            occurred_at=f"{day.isoformat()}T{8 + number % 10:02d}:{number % 60:02d}:00+08:00",
            visit_id=visit_id,
            hospital_code=f"H370102{person % 300:03d}",
            visit_type=("outpatient", "inpatient", "emergency")[number % 3],
            identity_verified=True,
        ),
    )


def evidence_lines(count: int, pensioners: int) -> dict[str, list[Line]]:
    """``count`` evidence events in passes over the pensioners; pass r is dated r % 30
    days after EVIDENCE_START, and passes 0, 2 and 4 (mod 5) are strong hospital visits,
    the others weak transit taps."""
    out: dict[str, list[Line]] = {HOSPITAL: [], TRANSIT: []}
    for number in range(count):
        person, rank = number % pensioners, number // pensioners
        day = EVIDENCE_START + dt.timedelta(days=rank % 30)
        if rank % 5 in (0, 2, 4):
            out[HOSPITAL].append(hospital_visit(number, person, day, f"V-{number:08d}"))
        else:
            record = sample_input(
                TRANSIT,
                citizen_id(person),
                occurred_at=f"{day.isoformat()}T{7 + number % 12:02d}:{number % 60:02d}:00+08:00",
                card_id=f"TC-{person:07d}",
                mode=("bus", "metro", "rail")[number % 3],
                station_code=f"S{number % 500:03d}",
                identity_verified=False,
            )
            out[TRANSIT].append(line(number, record))
    return out


def latency_lines(count: int, pensioners: int, *, first: int = 0) -> list[Line]:
    """Strong evidence, each for a pensioner whose last ``confirmed`` is over 30 days older:
    every one of them yields a ``confirmed`` (numbered from ``first``: a second latency
    run continues where the first stopped)."""
    return [
        hospital_visit(
            number,
            number % pensioners,
            EVIDENCE_START
            + dt.timedelta(days=LATENCY_START_DAYS + LATENCY_CYCLE_DAYS * (number // pensioners)),
            f"L-{number:08d}",
        )
        for number in range(first, first + count)
    ]


async def load_backlog(settings: Settings, pensioners: int, events: int) -> Backlog:
    """Publish the pensioners, then the evidence; refuses a broker that has data already."""
    datasets = {PENSIONER: pensioner_lines(pensioners), **evidence_lines(events, pensioners)}
    topics = [CATALOG.get(name).topic for name in datasets]
    if await end_offsets(settings, topics):
        raise SystemExit(f"the input topics are not empty: {topics}; use a fresh broker")
    async with Publisher(settings) as publisher:
        for dataset, lines in datasets.items():
            started = time.perf_counter()
            summary = await publisher.publish_many(dataset, lines)
            if summary.accepted != len(lines):
                raise SystemExit(f"{dataset}: {summary.rejected} of {len(lines)} rejected")
            log(f"published {len(lines):,} {dataset} in {time.perf_counter() - started:.1f} s")
    return Backlog({d: len(lines) for d, lines in datasets.items()}, min(pensioners, events))


# --- Kafka helpers ----------------------------------------------------------------------


async def topic_partitions(
    consumer: AIOKafkaConsumer, topics: Sequence[str]
) -> list[TopicPartition]:
    cluster = await kafka_client(consumer).fetch_all_metadata()
    return [
        TopicPartition(topic, partition)
        for topic in topics
        for partition in sorted(cluster.partitions_for_topic(topic) or ())
    ]


async def end_offsets(settings: Settings, topics: Sequence[str]) -> int:
    """The sum of the end offsets of ``topics`` (records ever written, without deletions)."""
    consumer = AIOKafkaConsumer(**settings.kafka_client_options())
    await consumer.start()
    try:
        return sum((await consumer.end_offsets(await topic_partitions(consumer, topics))).values())
    finally:
        await consumer.stop()


async def records_in(settings: Settings, topics: Sequence[str]) -> int:
    """How many records of ``topics`` a read_committed reader receives (end offsets also
    count the markers that end transactions, and aborted records)."""
    consumer = AIOKafkaConsumer(
        **settings.kafka_client_options(),
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, topics)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        pending = {tp for tp in partitions if ends[tp] > 0}
        count = 0
        while pending:
            fetched = await consumer.getmany(*pending, timeout_ms=500)
            count += sum(len(records) for records in fetched.values())
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
                    consumer.pause(tp)
        return count
    finally:
        await consumer.stop()


async def behind(settings: Settings, group: str, topics: Sequence[str]) -> int:
    """How many records of ``topics`` the group has not committed yet."""
    consumer = AIOKafkaConsumer(**settings.kafka_client_options(), group_id=group)
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, topics)
        ends = await consumer.end_offsets(partitions)
        return sum([ends[tp] - (await consumer.committed(tp) or 0) for tp in partitions])
    finally:
        await consumer.stop()


async def write_window(settings: Settings, topic: str) -> tuple[float, float]:
    """CreateTime (seconds) of the first and of the last record written to ``topic``."""
    consumer = AIOKafkaConsumer(
        **settings.kafka_client_options(),
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, [topic])
        consumer.assign(partitions)
        begins = await consumer.beginning_offsets(partitions)
        # After the last record, not after the marker that ends its transaction.
        ends = await visible_ends(settings, await consumer.end_offsets(partitions))
        firsts: list[float] = []
        lasts: list[float] = []
        for tp in partitions:
            if ends[tp] <= begins[tp]:
                continue
            for offset, times in ((begins[tp], firsts), (ends[tp] - 1, lasts)):
                consumer.seek(tp, offset)
                record = await consumer.getone(tp)
                times.append(record.timestamp / 1000)
        if not firsts:
            raise SystemExit(f"nothing was written to {topic}")
        return min(firsts), max(lasts)
    finally:
        await consumer.stop()


# --- running the variants ---------------------------------------------------------------


def worker_env(settings: Settings, workdir: Path) -> dict[str, str]:
    return os.environ | {
        "DATABUS_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "DATABUS_PSEUDONYM_KEY": PSEUDONYM_KEY,
        "DATABUS_PARTITIONS": str(settings.partitions),
        "DATABUS_CONFIG": str(workdir / "no-config.toml"),
    }


@contextlib.contextmanager
def worker_process(
    settings: Settings, workdir: Path, name: str, *args: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``decision_workers.py ARGS`` in its own process group, output to ``name.log``;
    stopped with SIGTERM (SIGKILL after a minute) at the end."""
    with (workdir / f"{name}.log").open("ab") as output:
        process = subprocess.Popen(  # noqa: S603 - our own script
            [sys.executable, str(WORKERS), *args],
            env=worker_env(settings, workdir),
            stdout=subprocess.PIPE if args[0] == "raw" else output,
            stderr=output,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def failed_run(workdir: Path, name: str, what: str) -> SystemExit:
    tail = (workdir / f"{name}.log").read_text(errors="replace").splitlines()[-30:]
    return SystemExit(f"{name} {what}; the end of {workdir / name}.log:\n" + "\n".join(tail))


def wait_caught_up(
    settings: Settings,
    *,
    process: subprocess.Popen[bytes],
    group: str,
    topics: Sequence[str],
    workdir: Path,
    name: str,
) -> None:
    deadline = time.monotonic() + WORKER_LIMIT_S
    while asyncio.run(behind(settings, group, topics)) > 0:
        if process.poll() is not None:
            raise failed_run(workdir, name, f"exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise failed_run(workdir, name, f"not caught up after {WORKER_LIMIT_S:.0f} s")
        time.sleep(POLL_S)


def run_faust(
    settings: Settings, workdir: Path, variant: str, app_id: str, backlog: Backlog
) -> Run:
    """Start a Faust variant on a fresh group, wait until it has committed the backlog."""
    before = asyncio.run(records_in(settings, DERIVED_TOPICS))
    data_dir = workdir / app_id
    started = time.time()
    with worker_process(
        settings, workdir, app_id, variant, "--app-id", app_id, "--data-dir", str(data_dir)
    ) as process:
        wait_caught_up(
            settings, process=process, group=app_id, topics=backlog.topics,
            workdir=workdir, name=app_id,
        )  # fmt: skip
        caught_up = time.time()
    first, last = asyncio.run(write_window(settings, changelog_topic(app_id)))
    decisions = asyncio.run(records_in(settings, DERIVED_TOPICS)) - before
    writes = asyncio.run(records_in(settings, [changelog_topic(app_id)]))
    return Run(backlog.events, last - first, caught_up - started, decisions, writes)


def run_raw(settings: Settings, workdir: Path, app_id: str, backlog: Backlog) -> Run:
    before = asyncio.run(records_in(settings, DERIVED_TOPICS))
    started = time.time()
    with worker_process(settings, workdir, app_id, "raw", "--app-id", app_id) as process:
        stdout, _ = process.communicate(timeout=WORKER_LIMIT_S)
        if process.returncode != 0:
            raise failed_run(workdir, app_id, f"exited with {process.returncode}")
    timing = orjson.loads(stdout)
    decisions = asyncio.run(records_in(settings, DERIVED_TOPICS)) - before
    if timing["events"] != backlog.events:
        raise SystemExit(f"raw consumed {timing['events']:,} of {backlog.events:,} events")
    return Run(
        backlog.events, timing["last"] - timing["first"], timing["last"] - started, decisions
    )


def measure(settings: Settings, workdir: Path, backlog: Backlog, rounds: int) -> Results:
    results = Results()
    for number in range(rounds):
        shift = number % len(VARIANTS)
        for variant in [*VARIANTS[shift:], *VARIANTS[:shift]]:
            app_id = f"bench-{variant}-{number + 1}"
            if variant == "raw":
                run = run_raw(settings, workdir, app_id, backlog)
            else:
                run = run_faust(settings, workdir, variant, app_id, backlog)
            results.runs[variant].append(run)
            log(
                f"round {number + 1}: {variant:<5} {run.rate:>8,.0f} events/s "
                f"({run.events:,} in {run.window_s:.1f} s; launch → caught up "
                f"{run.start_to_caught_up_s:.1f} s; {run.decisions:,} decisions)"
            )
            if run.decisions != backlog.expected_decisions:
                log(f"  warning: expected {backlog.expected_decisions:,} decisions")
    return results


# --- latency ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    rate: float
    sent: int
    received: int
    seconds: list[float]
    """Publish → decision visible, per matched event, sorted."""
    per_second: list[float]
    """The median latency of the events sent in each second of the window."""
    worker_cpu: float
    """CPU time of the worker process over the window, as a share of one core."""

    def quantile(self, q: float) -> float:
        return self.seconds[min(len(self.seconds) - 1, int(q * len(self.seconds)))]


class Arrivals:
    """When each decision arrived, by the id of the evidence it cites."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._more = asyncio.Event()

    async def collect(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    for ref in orjson.loads(record.value).get("evidence") or ():
                        self.times.setdefault(ref["id"], now)
            if batches:
                self._more.set()

    async def wait_for(self, ids: Sequence[str], limit_s: float) -> bool:
        """Whether the decisions on all of ``ids`` arrived within ``limit_s``."""
        deadline = time.monotonic() + limit_s
        while any(i not in self.times for i in ids):
            self._more.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._more.wait(), max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                return all(i in self.times for i in ids)
        return True


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def paced_latency(
    settings: Settings, messages: list[Message], rate: float, worker_pid: int
) -> Latency:
    """Send ``messages`` (the first LATENCY_WARMUP untimed) at ``rate`` per second and
    time each decision's arrival."""
    consumer = AIOKafkaConsumer(
        **settings.kafka_client_options(), enable_auto_commit=False, fetch_max_wait_ms=50
    )
    producer = AIOKafkaProducer(**producer_options(settings))
    await consumer.start()
    await producer.start()
    arrivals = Arrivals()
    arrived = arrivals.times
    collector: asyncio.Task[None] | None = None
    try:
        partitions = await topic_partitions(consumer, [CATALOG.get(DECISIONS).topic])
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)
        collector = asyncio.create_task(arrivals.collect(consumer))
        warmup, timed = messages[:LATENCY_WARMUP], messages[LATENCY_WARMUP:]
        await asyncio.gather(*[await _send(producer, m) for m in warmup])
        if not await arrivals.wait_for([m.id for m in warmup], 120):
            raise SystemExit("the worker did not decide on the warm-up evidence within 120 s")
        sent_at: dict[str, float] = {}
        deliveries = []
        loop = asyncio.get_running_loop()
        cpu_before, wall_before = cpu_seconds(worker_pid), time.perf_counter()
        start = loop.time() + 0.01
        for index, message in enumerate(timed):
            delay = start + index / rate - loop.time()
            if delay > 0.001:
                await asyncio.sleep(delay)
            sent_at[message.id] = time.perf_counter()
            deliveries.append(await _send(producer, message))
        await asyncio.gather(*deliveries)
        await arrivals.wait_for(list(sent_at), 60)
        cpu = (cpu_seconds(worker_pid) - cpu_before) / (time.perf_counter() - wall_before)
        latencies = sorted(arrived[i] - t for i, t in sent_at.items() if i in arrived)
        began = min(sent_at.values())
        seconds: dict[int, list[float]] = {}
        for event_id, sent in sent_at.items():
            if event_id in arrived:
                seconds.setdefault(int(sent - began), []).append(arrived[event_id] - sent)
        per_second = [statistics.median(seconds[s]) for s in sorted(seconds)]
        return Latency(rate, len(timed), len(latencies), latencies, per_second, cpu)
    finally:
        if collector is not None:
            collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collector
        await producer.stop()
        await consumer.stop()


async def _send(producer: AIOKafkaProducer, message: Message) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = await producer.send(
        message.topic, message.value, key=message.key, headers=message.headers
    )
    return future


def measure_latency(
    settings: Settings, workdir: Path, backlog: Backlog, *, pensioners: int, rate: float,
    seconds: float, variant: str = "ours", first: int = 0,
) -> Latency:  # fmt: skip
    """Restart round 1's engine of ``variant`` (caught up), then run the paced latency
    test against it, with evidence for pensioners from ``first`` on (each gets one new
    decision)."""
    count = LATENCY_WARMUP + int(rate * seconds)
    intake = Intake(CATALOG.get(HOSPITAL), Pseudonymizer(settings.pseudonym_key_bytes()))
    messages = []
    for item in latency_lines(count, pensioners, first=first):
        outcome = intake.from_line(item, where=f"latency record {item.number}")
        if not isinstance(outcome, Message):
            raise SystemExit(f"a latency record was rejected: {outcome.summary()}")
        messages.append(outcome)
    app_id = f"bench-{variant}-1"
    with worker_process(
        settings, workdir, f"{app_id}-latency", variant,
        "--app-id", app_id, "--data-dir", str(workdir / app_id),
    ) as process:  # fmt: skip
        wait_caught_up(
            settings, process=process, group=app_id, topics=backlog.topics,
            workdir=workdir, name=f"{app_id}-latency",
        )  # fmt: skip
        log(f"latency: {count:,} events at {rate:,.0f}/s against the restarted engine")
        return asyncio.run(paced_latency(settings, messages, rate, process.pid))


# --- profile ----------------------------------------------------------------------------

#: Parts of the engine's time: (label, file name ending, function name); cumulative.
PROFILE_PARTS = (
    ("`DecisionProcessor.process` (our batch work)", "databus/streams/processor.py", "process"),
    ("- `wire.decode` (headers, pydantic `model_validate_json`)", "databus/wire.py", "decode"),
    ("- rules: `on_event`", "databus/rules/engine.py", "on_event"),
    ("  - of which building decisions (`_status`, pydantic)", "databus/rules/pension.py",
     "_status"),
    ("- state read: `_state` (table get + `from_bytes`)", "databus/streams/processor.py", "_state"),
    ("  - of which `PersonState.from_bytes`", "databus/rules/state.py", "from_bytes"),
    ("- state write: `DirectState.__setitem__` (RocksDB put + changelog row)",
     "databus/streams/output.py", "__setitem__"),
    ("  - of which `PersonStore.put_in` (RocksDB put)", "databus/streams/table.py", "put_in"),
    ("- `PersonState.to_bytes`", "databus/rules/state.py", "to_bytes"),
    ("- due index (`_index`)", "databus/streams/processor.py", "_index"),
    ("`DecisionEngine.messages` (encode decisions and dead letters)", "databus/streams/app.py",
     "messages"),
    ("`BatchOutput.write` (changelog batches + decisions onto the producer)",
     "databus/streams/output.py", "write"),
)  # fmt: skip
#: Faust's per-event machinery, cumulative (these overlap; tasks are counted apart).
FAUST_PATHS = (
    ("batch delivery `BatchConsumer._handle` (fetch → handler, offsets)",
     "databus/streams/fastpath.py", "_handle"),
    ("Faust's own delivery loop `Consumer._drain_messages` (unused on the batch path)",
     "faust/transport/consumer.py", "_drain_messages"),
    ("mode `Service.wait_first` (per message: two tasks and `asyncio.wait`)", "mode/services.py",
     "wait_first"),
    ("`Conductor.on_message` (flow control, decode into an Event, channel queue put)",
     "faust/transport/conductor.py", "on_message"),
    ("stream iteration `Stream._c_aiter` (take_events buffer, acks)", "faust/streams.py",
     "_c_aiter"),
    ("table read `Store.__contains__` (a second lookup before each get)", "faust/stores/base.py",
     "__contains__"),
    ("producer buffer `_handle_pending` → `publish_message` (changelog and decisions)",
     "faust/transport/producer.py", "_handle_pending"),
    ("aiokafka sender `_sender_routine` (produce requests)", "aiokafka/producer/sender.py",
     "_sender_routine"),
)  # fmt: skip
#: Own time by where the code lives: (label, substrings of the file or builtin's name).
PACKAGES = (
    ("event loop idle (`epoll.poll`)", ("select.epoll",)),
    ("faust", ("/faust/",)),
    ("mode (Faust's service framework)", ("/mode/",)),
    ("aiokafka (fetch parsing, producer batches)", ("/aiokafka/", "aiokafka")),
    ("asyncio", ("/asyncio/", "_asyncio")),
    ("databus (our code)", ("/databus/",)),
    ("pydantic (validation, `model_dump`)", ("pydantic",)),
    ("RocksDB (rocksdict)", ("rocksdict", "Rdict")),
    ("orjson", ("orjson",)),
)


def profile_engine(
    settings: Settings, workdir: Path, limit: int, keep: Path | None = None, top: int = 25
) -> str:
    """A fresh engine profiles its first ``limit`` events; its stats as markdown (and the
    raw pstats file copied to ``keep``)."""
    app_id = "bench-ours-profile"
    out = workdir / "engine.prof"
    with worker_process(
        settings, workdir, app_id, "ours", "--app-id", app_id,
        "--data-dir", str(workdir / app_id), "--profile-out", str(out),
        "--profile-events", str(limit),
    ) as process:  # fmt: skip
        try:
            process.wait(timeout=WORKER_LIMIT_S)
        except subprocess.TimeoutExpired:
            raise failed_run(workdir, app_id, "did not finish its profile") from None
    if not out.exists():
        raise failed_run(workdir, app_id, "wrote no profile")
    meta = orjson.loads(out.with_suffix(".json").read_bytes())
    if keep is not None:
        keep.write_bytes(out.read_bytes())
    return profile_report(pstats.Stats(str(out)), meta["events"], meta["wall_s"], top)


def profile_report(stats: pstats.Stats, events: int, wall: float, top: int) -> str:
    rows: dict[tuple[str, int, str], tuple[int, int, float, float, Any]]
    rows = stats.stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in rows.values())
    per_event = 1e6 / events
    report = [
        f"cProfile of the engine's main thread from its first batch until {events:,} events "
        f"were handled: {wall:.1f} s wall ({events / wall:,.0f} events/s under the profiler), "
        f"{total:.1f} s profiled. cProfile inflates Python-heavy code: read the shares.",
        "",
        "| part (cumulative) | seconds | share | µs/event |",
        "|---|---:|---:|---:|",
    ]

    def cumulative(suffix: str, function: str) -> float:
        return sum(
            row[3]
            for (filename, _, name), row in rows.items()
            if filename.endswith(suffix) and name == function
        )

    ours = 0.0
    for label, suffix, function in PROFILE_PARTS:
        seconds = cumulative(suffix, function)
        if not label.startswith((" ", "-")):
            ours += seconds
        report.append(
            f"| {label} | {seconds:.2f} | {seconds / total:.0%} | {seconds * per_event:.1f} |"
        )
    idle = sum(
        row[2] for (_, _, name), row in rows.items() if "select.epoll" in name and "poll" in name
    )
    rest = total - ours - idle
    report += [
        f"| Faust, mode, aiokafka and asyncio around them (the rest, busy) | {rest:.2f} "
        f"| {rest / total:.0%} | {rest * per_event:.1f} |",
        f"| event loop idle (`epoll.poll`) | {idle:.2f} | {idle / total:.0%} "
        f"| {idle * per_event:.1f} |",
        "",
        "Faust's machinery around it (cumulative; the rows overlap):",
        "",
        "| path | seconds | share | µs/event |",
        "|---|---:|---:|---:|",
    ]
    for label, suffix, function in FAUST_PATHS:
        seconds = cumulative(suffix, function)
        report.append(
            f"| {label} | {seconds:.2f} | {seconds / total:.0%} | {seconds * per_event:.1f} |"
        )
    report += [
        "",
        "Own time by package:",
        "",
        "| package | seconds | share | µs/event |",
        "|---|---:|---:|---:|",
    ]
    by_package: dict[str, float] = {label: 0.0 for label, _ in PACKAGES}
    other = 0.0
    for (filename, _, name), row in rows.items():
        where = name if filename == "~" else filename
        for label, markers in PACKAGES:
            if any(marker in where for marker in markers):
                by_package[label] += row[2]
                break
        else:
            other += row[2]
    by_package["other (stdlib, builtins)"] = other
    for label, seconds in by_package.items():
        report.append(
            f"| {label} | {seconds:.2f} | {seconds / total:.0%} | {seconds * per_event:.1f} |"
        )
    calls = {
        "asyncio callbacks run (`Handle._run`)": ("asyncio/events.py", "_run"),
        "changelog rows (`DirectState.__setitem__`)": ("databus/streams/output.py", "__setitem__"),
        "RocksDB puts (`PersonStore.put_in`)": ("databus/streams/table.py", "put_in"),
        "batches (`DecisionProcessor.process`)": ("databus/streams/processor.py", "process"),
    }
    report += ["", "Calls per event handled:", ""]
    for label, (suffix, function) in calls.items():
        count = sum(
            row[1]
            for (filename, _, name), row in rows.items()
            if filename.endswith(suffix) and name == function
        )
        report.append(f"- {label}: {count / events:.3f}")
        if function == "process" and count:
            report.append(f"  (on average {events / count:,.0f} events per batch)")
    report += ["", f"Top {top} functions by own time:", "", "```"]
    ranked = sorted(rows.items(), key=lambda item: -item[1][2])
    for (filename, line_no, function), (_, count, own, cum, _) in ranked[:top]:
        where = f"{short_path(filename)}:{line_no}({function})" if filename != "~" else function
        report.append(f"{own:5.2f} s own {cum:6.2f} s cum {count:>9,} calls  {where}")
    report.append("```")
    return "\n".join(report)


# --- report -----------------------------------------------------------------------------


def markdown(
    results: Results,
    backlog: Backlog,
    latencies: dict[str, Latency],
    *,
    partitions: int,
    kafka: str,
    command: str,
) -> str:
    runs = results.runs
    rounds = len(runs["ours"])
    ours = results.median_rate("ours")
    naive_ratios, raw_ratios = results.ratios("naive"), results.ratios("raw")
    naive_ratio = statistics.median(naive_ratios)
    mix = ", ".join(f"{count:,} `{name}`" for name, count in backlog.counts.items())
    lines = [
        f"Command: `{command}`",
        "",
        "Machine:",
        "",
        *machine(),
        f"- faust-streaming {version('faust-streaming')}, rocksdict {version('rocksdict')}",
        f"- Kafka: {kafka}",
        "",
        f"Backlog: {backlog.events:,} input events ({mix}), {partitions} partitions; "
        f"{backlog.expected_decisions:,} `confirmed` decisions expected per run. "
        f"{rounds} interleaved round(s); input events/s over the processing window "
        "(Faust variants: first to last changelog write; raw: first batch to final commit):",
        "",
        "| variant | " + " | ".join(f"round {n + 1}" for n in range(rounds)) + " | median |",
        "|---|" + "---:|" * (rounds + 1),
    ]
    for variant in VARIANTS:
        cells = " | ".join(f"{run.rate:,.0f}" for run in runs[variant])
        lines.append(f"| {LABELS[variant]} | {cells} | {results.median_rate(variant):,.0f} |")
    agent_ratios = results.ratios("agent")
    for label, ratios in (
        ("exactly-once/at-least-once", results.ratios("alo")),
        ("ours/naive", naive_ratios),
        ("ours/agent path", agent_ratios),
        ("ours/raw", raw_ratios),
    ):
        cells = " | ".join(f"{r:.2f}{TIMES}" for r in ratios)
        lines.append(f"| ratio {label} | {cells} | **{statistics.median(ratios):.2f}{TIMES}** |")
    lines += [
        "",
        "| variant | " + " | ".join(f"round {n + 1}" for n in range(rounds)) + " |",
        "|---|" + "---|" * rounds,
    ]
    for variant in VARIANTS:
        cells = " | ".join(
            f"{run.window_s:.1f} s / {run.start_to_caught_up_s:.1f} s / {run.decisions:,} / "
            + ("n/a" if run.state_writes is None else f"{run.state_writes / run.events:.2f}")
            for run in runs[variant]
        )
        lines.append(
            f"| {variant}: window / launch → caught up / decisions / state writes per event "
            f"| {cells} |"
        )
    verdict_rate = "meets" if ours >= TARGET_RATE else "misses"
    verdict_ratio = "meets" if naive_ratio >= TARGET_NAIVE_RATIO else "misses"
    lines += [
        "",
        f"Ours, median: **{ours:,.0f} events/s** ({verdict_rate} the target of "
        f"{TARGET_RATE:,}); **{naive_ratio:.2f}{TIMES}** the naive agent ({verdict_ratio} the "
        f"target of {TARGET_NAIVE_RATIO:.0f}{TIMES}); {statistics.median(raw_ratios):.0%} of raw "
        "aiokafka.",
    ]
    if latencies:
        some = next(iter(latencies.values()))
        lines += [
            "",
            f"Latency, publish (`send()`) → decision read from `{DECISIONS}`, one `confirmed` "
            f"per event, {some.sent:,} events at {some.rate:,.0f}/s against each caught-up "
            "engine (restarted round 1), one after the other:",
            "",
            "| engine | decisions arrived | p50 | p90 | p99 | max | worker CPU |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for variant, latency in latencies.items():
            quantiles = (
                latency.quantile(0.5),
                latency.quantile(0.9),
                latency.quantile(0.99),
                latency.seconds[-1],
            )
            lines.append(
                f"| {LABELS[variant]} | {latency.received:,} of {latency.sent:,} | "
                + " | ".join(f"{value * 1000:,.0f} ms" for value in quantiles)
                + f" | {latency.worker_cpu:.0%} |"
            )
        lines.append("")
        for variant, latency in latencies.items():
            lines.append(
                f"Median latency of the events sent in each second, {variant}: "
                + ", ".join(f"{value * 1000:,.0f}" for value in latency.per_second)
                + " ms."
            )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--events", type=int, default=200_000, help="evidence events")
    parser.add_argument("--pensioners", type=int, default=10_000, help="pensioner records")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--partitions", type=int, default=12, help="partitions per topic")
    parser.add_argument("--rate", type=float, default=2_000, help="latency test: events/s")
    parser.add_argument(
        "--latency-seconds", type=float, default=20, help="latency test length; 0: none"
    )
    parser.add_argument("--profile", action="store_true", help="then profile the engine")
    parser.add_argument("--profile-events", type=int, default=60_000, help="profiled events")
    parser.add_argument("--profile-out", type=Path, help="also keep the engine's pstats here")
    parser.add_argument("--bootstrap", help="use this (empty) broker instead of starting one")
    args = parser.parse_args(argv)
    if min(args.events, args.pensioners, args.rounds, args.partitions) < 1:
        parser.error("--events, --pensioners, --rounds and --partitions must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = " ".join([".venv/bin/python", "bench/decisions_throughput.py", *sys.argv[1:]])
    with (
        broker(args.bootstrap) as (bootstrap, kafka),
        tempfile.TemporaryDirectory(prefix="databus-bench-decisions-") as temp,
    ):
        workdir = Path(temp)
        settings = Settings(
            bootstrap_servers=bootstrap,
            pseudonym_key=PSEUDONYM_KEY,  # type: ignore[arg-type]
            demo=False,
            partitions=args.partitions,
        )
        asyncio.run(apply_topics(settings))
        log(f"topics applied ({args.partitions} partitions); workers log to {workdir}")
        backlog = asyncio.run(load_backlog(settings, args.pensioners, args.events))
        gc.collect()
        results = measure(settings, workdir, backlog, args.rounds)
        latencies: dict[str, Latency] = {}
        if args.latency_seconds > 0:
            # The shipped engine only: a second engine restarted after it (the
            # at-least-once one, on evidence numbered on) did not decide its warm-up
            # within 120 s in the one run tried; not investigated yet.
            latencies["ours"] = measure_latency(
                settings, workdir, backlog, pensioners=args.pensioners, rate=args.rate,
                seconds=args.latency_seconds,
            )  # fmt: skip
        report = markdown(
            results, backlog, latencies, partitions=args.partitions, kafka=kafka, command=command
        )
        print(report, flush=True)
        if args.profile:
            log(f"profiling the engine over {args.profile_events:,} events")
            profile = profile_engine(settings, workdir, args.profile_events, args.profile_out)
            print("\n" + profile, flush=True)


if __name__ == "__main__":
    main()
