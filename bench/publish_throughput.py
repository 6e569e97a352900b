"""Publish throughput: the Publisher against a raw aiokafka producer, in the same run.

Three variants over the same N ``health.hospital_visit.v1`` NDJSON lines, interleaved over
R rounds (the order of the two Kafka variants alternates from round to round):

* ``raw``: an ``AIOKafkaProducer`` with exactly ``producer_options(settings)`` sends the
  key, value and headers the Intake produced for those lines (computed once, before
  timing), gathering the delivery futures every ``IN_FLIGHT`` sends as the Publisher does;
* ``publisher``: ``Publisher.publish_many(dataset, lines)``, i.e. validation, pseudonym,
  CloudEvents envelope and send;
* ``intake``: ``Intake.from_line`` over every line without sending, the CPU-only part of
  the publisher (our code, no aiokafka).

Only the publishing itself is timed (producer start and stop are not); wall time gives
records/s, and the CPU time of this process over the same window shows whether it was
CPU-bound. The generated input and the raw variant's pre-serialised messages are hidden
from the garbage collector (``gc.freeze()``) so that neither variant pays for scanning
benchmark data a real publisher never holds; ``--no-gc-freeze`` measures without that.
Unless ``--bootstrap`` is given, a LocalBroker is started on free ports in a temporary
state directory (reusing the jar cache) and stopped at the end.

    .venv/bin/python bench/publish_throughput.py [--records N] [--rounds R]
        [--bootstrap HOST:PORT] [--profile] [--no-gc-freeze]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import gc
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiokafka
import orjson
import pydantic
from aiokafka import AIOKafkaProducer

from databus.catalog import CATALOG
from databus.client.batching import PartitionBatches
from databus.client.files import Line
from databus.client.intake import Intake
from databus.client.publisher import IN_FLIGHT, Publisher
from databus.identity import Pseudonymizer
from databus.ops.broker import LocalBroker, free_ports
from databus.ops.kafka_dist import KAFKA_VERSION
from databus.ops.topics import apply_topics
from databus.runtime.producers import producer_options
from databus.settings import Settings
from databus.wire import Message

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.factories import make_citizen_id, sample_input  # noqa: E402

DATASET = "health.hospital_visit.v1"
PSEUDONYM_KEY = "bench-only-pseudonym-key-at-least-32-bytes"
TARGET = 0.60
VARIANTS = ("raw", "publisher", "intake", "raw_batch")
KAFKA_VARIANTS = ("raw", "publisher", "raw_batch")
LABELS = {
    "raw": "(a) raw aiokafka `send()`, pre-serialised bytes",
    "publisher": "(b) `Publisher.publish_many`",
    "intake": "(c) `Intake.from_line` only, no send",
    "raw_batch": "(d) raw aiokafka batch API, pre-serialised bytes",
}
VISIT_TYPES = ("outpatient", "inpatient", "emergency")
REGIONS = ("370102", "370103", "370104", "370105", "370112", "370113")
#: Share of the records sent once by each Kafka variant before round 1 (JIT, metadata).
WARMUP_SHARE = 0.1
#: The optional profile of the publisher covers at most this many records.
PROFILE_RECORDS = 50_000


@dataclass(frozen=True, slots=True)
class Timing:
    """Wall and process CPU seconds over the same window."""

    wall: float
    cpu: float


class Stopwatch:
    """Measures wall and CPU time of the code between ``start()`` and ``stop()``."""

    def __init__(self) -> None:
        self._wall = self._cpu = 0.0

    def start(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def stop(self) -> Timing:
        return Timing(time.perf_counter() - self._wall, time.process_time() - self._cpu)


@dataclass
class Results:
    """Per variant, one entry per round."""

    rates: dict[str, list[float]] = field(default_factory=lambda: {n: [] for n in VARIANTS})
    """Records per second (wall clock)."""
    cpu_us: dict[str, list[float]] = field(default_factory=lambda: {n: [] for n in VARIANTS})
    """CPU time of this process per record, in microseconds."""

    def add(self, name: str, count: int, timing: Timing) -> None:
        self.rates[name].append(count / timing.wall)
        self.cpu_us[name].append(timing.cpu / count * 1e6)

    def ratios(self, baseline: str = "raw") -> list[float]:
        return [p / r for p, r in zip(self.rates["publisher"], self.rates[baseline], strict=True)]


def make_lines(count: int) -> list[Line]:
    """``count`` valid, distinct agency records as NDJSON lines (without the newline)."""
    first_birthday = dt.date(1930, 1, 1)
    start = dt.datetime(2026, 3, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    lines = []
    for i in range(count):
        born = first_birthday + dt.timedelta(days=(i * 7919) % 27_000)
        citizen_id = make_citizen_id(REGIONS[i % len(REGIONS)], born, i % 997 + 1)
        record = sample_input(
            DATASET,
            citizen_id,
            occurred_at=(start + dt.timedelta(seconds=i * 13)).isoformat(),
            visit_id=f"V-{i:08d}",
            hospital_code=f"H370102{i % 300:03d}",
            visit_type=VISIT_TYPES[i % len(VISIT_TYPES)],
            identity_verified=i % 10 != 0,
        )
        lines.append(Line(i + 1, orjson.dumps(record)))
    return lines


def new_intake(settings: Settings) -> Intake:
    return Intake(CATALOG.get(DATASET), Pseudonymizer(settings.pseudonym_key_bytes()))


def precompute(settings: Settings, lines: list[Line]) -> list[Message]:
    """What the Publisher will send for ``lines``: the raw variant's pre-serialised bytes."""
    intake = new_intake(settings)
    messages = []
    for line in lines:
        outcome = intake.from_line(line, where=f"record {line.number}")
        if not isinstance(outcome, Message):
            raise SystemExit(f"generated record {line.number} was rejected: {outcome.summary()}")
        messages.append(outcome)
    return messages


async def send_raw(settings: Settings, messages: list[Message]) -> Timing:
    """The raw producer sends ``messages`` and waits for every delivery."""
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        watch = Stopwatch()
        watch.start()
        pending: list[asyncio.Future[Any]] = []
        for message in messages:
            pending.append(
                await producer.send(
                    message.topic, message.value, key=message.key, headers=message.headers
                )
            )
            if len(pending) >= IN_FLIGHT:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return watch.stop()
    finally:
        await producer.stop()


async def send_raw_batches(settings: Settings, messages: list[Message]) -> Timing:
    """The raw producer's batch API (``create_batch``/``send_batch``) with the same bytes:
    what is left of (b) when validation, pseudonym and envelope cost nothing."""
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        topic = messages[0].topic
        batches = PartitionBatches(producer, topic, await producer.partitions_for(topic))
        watch = Stopwatch()
        watch.start()
        for number, message in enumerate(messages, start=1):
            full = batches.add(message)
            if full is not None:
                await batches.send(full)
            if number % IN_FLIGHT == 0:
                await batches.flush()
                await asyncio.gather(*batches.sent)
                batches.sent.clear()
        await batches.flush()
        await asyncio.gather(*batches.sent)
        return watch.stop()
    finally:
        await producer.stop()


async def send_publisher(
    settings: Settings, lines: list[Line], profiler: cProfile.Profile | None = None
) -> Timing:
    """``Publisher.publish_many`` over ``lines`` (all of them must be accepted)."""
    async with Publisher(settings) as publisher:
        watch = Stopwatch()
        if profiler is not None:
            profiler.enable()
        watch.start()
        summary = await publisher.publish_many(DATASET, lines)
        timing = watch.stop()
        if profiler is not None:
            profiler.disable()
    if summary.accepted != len(lines) or summary.rejected:
        raise SystemExit(f"publisher accepted {summary.accepted} of {len(lines)} records")
    return timing


def intake_only(settings: Settings, lines: list[Line]) -> Timing:
    """``Intake.from_line`` over ``lines``: the publisher's CPU work without Kafka."""
    intake = new_intake(settings)
    watch = Stopwatch()
    watch.start()
    for line in lines:
        intake.from_line(line, where=f"record {line.number}")
    return watch.stop()


def measure(settings: Settings, lines: list[Line], messages: list[Message], rounds: int) -> Results:
    count = len(lines)
    variants: dict[str, Callable[[], Timing]] = {
        "raw": lambda: asyncio.run(send_raw(settings, messages)),
        "publisher": lambda: asyncio.run(send_publisher(settings, lines)),
        "intake": lambda: intake_only(settings, lines),
        "raw_batch": lambda: asyncio.run(send_raw_batches(settings, messages)),
    }
    warmup = max(1, int(count * WARMUP_SHARE))
    log(f"warm-up: {warmup:,} records through each Kafka variant")
    asyncio.run(send_raw(settings, messages[:warmup]))
    asyncio.run(send_publisher(settings, lines[:warmup]))
    results = Results()
    for number in range(rounds):
        shift = number % len(KAFKA_VARIANTS)
        order = [*KAFKA_VARIANTS[shift:], *KAFKA_VARIANTS[:shift]]
        for name in [*order, "intake"]:
            gc.collect()
            results.add(name, count, variants[name]())
            log(
                f"round {number + 1}: {name:<9} {results.rates[name][-1]:>9,.0f} records/s "
                f"{results.cpu_us[name][-1]:6.1f} µs CPU/record"
            )
    return results


OUR_CODE = "`Intake.from_line`: validation, pseudonym, envelope"
BATCHING = "`PartitionBatches.add`: partitioner and batch append"
#: Where the publisher's time goes: (label, file name ending, function name); cumulative.
PROFILE_PARTS = (
    (OUR_CODE, "databus/client/intake.py", "from_line"),
    ("- pydantic `model_validate_json` (incl. `citizen_id` check)", "~", "validate_json"),
    ("  - of which `normalise_citizen_id`", "databus/identity.py", "normalise_citizen_id"),
    ("    - of which `check_character`", "databus/identity.py", "check_character"),
    ("- `Pseudonymizer.person_ref`", "databus/identity.py", "person_ref"),
    ("- `model_dump`", "pydantic/main.py", "model_dump"),
    ("- `Encoder.encode` (JSON, content id, headers)", "databus/wire.py", "encode"),
    (BATCHING, "databus/client/batching.py", "add"),
    ("- murmur2", "databus/partitioner.py", "murmur2"),
    ("- aiokafka `BatchBuilder.append`", "aiokafka/producer/message_accumulator.py", "append"),
)


def profile_publisher(settings: Settings, lines: list[Line], top: int = 15) -> str:
    """A cProfile of one ``publish_many`` run, as a markdown table and a top list."""
    profiler = cProfile.Profile()
    asyncio.run(send_publisher(settings, lines, profiler))
    stats: dict[tuple[str, int, str], tuple[int, int, float, float, Any]]
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in stats.values())
    report = [
        f"cProfile of `publish_many` over {len(lines):,} records: {total:.2f} s under the "
        "profiler (cProfile inflates Python-heavy code; read the shares, not the seconds).",
        "",
        "| part (cumulative) | seconds | share |",
        "|---|---:|---:|",
    ]
    parts = {
        label: sum(
            row[3]
            for (filename, _, name), row in stats.items()
            if filename.endswith(suffix) and (name == function or f"'{function}'" in name)
        )
        for label, suffix, function in PROFILE_PARTS
    }
    rest = total - parts[OUR_CODE] - parts[BATCHING]
    parts["the rest: sender task, delivery callbacks, event loop, `publish_many` itself"] = rest
    for label, seconds in parts.items():
        report.append(f"| {label} | {seconds:.2f} | {seconds / total:.0%} |")
    report += ["", f"Top {top} functions by own time:", "", "```"]
    rows = sorted(stats.items(), key=lambda item: -item[1][2])
    for (filename, line, function), (_, calls, own, cumulative, _) in rows[:top]:
        where = f"{short_path(filename)}:{line}({function})" if filename != "~" else function
        report.append(f"{own:5.2f} s own {cumulative:5.2f} s cum {calls:>8,} calls  {where}")
    report.append("```")
    return "\n".join(report)


def short_path(filename: str) -> str:
    """A source path shortened for a profile listing."""
    for marker in ("/site-packages/", "/src/", "/lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename.rsplit("/", 1)[-1]


def machine() -> list[str]:
    """What the figures were measured on."""
    cpu = ram = "unknown"
    with contextlib.suppress(OSError):
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                cpu = row.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for row in Path("/proc/meminfo").read_text().splitlines():
            if row.startswith("MemTotal:"):
                ram = f"{int(row.split()[1]) / 1024**2:.1f} GiB"
                break
    return [
        f"- CPUs (nproc): {len(os.sched_getaffinity(0))}",
        f"- CPU model: {cpu}",
        f"- RAM: {ram}",
        f"- OS: {platform.system()} {platform.release()} ({platform.machine()})",
        f"- Python: {platform.python_implementation()} {platform.python_version()}",
        f"- aiokafka {aiokafka.__version__}, pydantic {pydantic.__version__}, "
        f"orjson {orjson.__version__}",
    ]


def markdown(results: Results, count: int, kafka: str, command: str, frozen: bool) -> str:
    rates, cpu_us = results.rates, results.cpu_us
    rounds = len(rates["raw"])
    ratios = results.ratios()
    ratio = statistics.median(ratios)
    lines = [
        f"Command: `{command}`",
        "",
        "Machine:",
        "",
        *machine(),
        f"- Kafka: {kafka}",
        "",
        f"{count:,} `{DATASET}` records per variant and round, {rounds} interleaved rounds"
        f"{'' if frozen else ', without gc.freeze()'}; records/s (wall clock):",
        "",
        "| variant | " + " | ".join(f"round {n + 1}" for n in range(rounds)) + " | median |",
        "|---|" + "---:|" * (rounds + 1),
    ]
    for name in VARIANTS:
        cells = " | ".join(f"{rate:,.0f}" for rate in rates[name])
        lines.append(f"| {LABELS[name]} | {cells} | {statistics.median(rates[name]):,.0f} |")
    cells = " | ".join(f"{r:.0%}" for r in ratios)
    lines.append(f"| ratio (b)/(a) | {cells} | **{ratio:.0%}** |")
    batch_ratios = results.ratios("raw_batch")
    cells = " | ".join(f"{r:.0%}" for r in batch_ratios)
    lines.append(f"| ratio (b)/(d) | {cells} | {statistics.median(batch_ratios):.0%} |")
    verdict = "meets" if ratio >= TARGET else "misses"
    lines += [
        "",
        f"Publisher/raw, median of the per-round ratios: **{ratio:.0%}**; this {verdict} "
        f"the target of {TARGET:.0%}.",
        "",
        "CPU time of the benchmark process per record (median µs; wall µs/record for comparison):",
        "",
        "| variant | CPU µs/record | wall µs/record |",
        "|---|---:|---:|",
    ]
    for name in VARIANTS:
        wall_us = 1e6 / statistics.median(rates[name])
        lines.append(f"| {LABELS[name]} | {statistics.median(cpu_us[name]):.1f} | {wall_us:.1f} |")
    return "\n".join(lines)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def broker(bootstrap: str | None) -> Iterator[tuple[str, str]]:
    """The bootstrap address and a description: the given broker, or a fresh local one
    that is stopped (and its temporary state removed) at the end."""
    if bootstrap is not None:
        yield bootstrap, f"external broker at {bootstrap} (version not checked)"
        return
    port, controller_port = free_ports(2)
    with tempfile.TemporaryDirectory(prefix="databus-bench-") as state_dir:
        local = LocalBroker(
            state_dir=Path(state_dir),
            cache_dir=Settings().cache_dir,
            port=port,
            controller_port=controller_port,
        )
        log(f"starting a local Kafka {KAFKA_VERSION} broker in {state_dir}")
        try:
            yield local.start(), f"Apache Kafka {KAFKA_VERSION} (LocalBroker: KRaft, one node)"
        finally:
            log("stopping the local broker")
            local.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--records", type=int, default=200_000, help="records per variant")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument(
        "--profile",
        action="store_true",
        help=f"then cProfile one publisher run (at most {PROFILE_RECORDS:,} records)",
    )
    parser.add_argument(
        "--no-gc-freeze",
        dest="gc_freeze",
        action="store_false",
        help="leave the benchmark's input data visible to the garbage collector",
    )
    args = parser.parse_args(argv)
    if args.records < 1 or args.rounds < 1:
        parser.error("--records and --rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = " ".join([".venv/bin/python", "bench/publish_throughput.py", *sys.argv[1:]])
    log(f"generating {args.records:,} records")
    lines = make_lines(args.records)
    with broker(args.bootstrap) as (bootstrap, kafka):
        settings = Settings(
            bootstrap_servers=bootstrap,
            pseudonym_key=PSEUDONYM_KEY,  # type: ignore[arg-type]
            demo=False,
        )
        changes = asyncio.run(apply_topics(settings))
        topic = CATALOG.get(DATASET).topic
        partitions = next(c.partitions for c in changes if c.topic == topic)
        log(f"topics applied; {topic} has {partitions} partitions")
        messages = precompute(settings, lines)
        if args.gc_freeze:
            gc.collect()
            gc.freeze()
        results = measure(settings, lines, messages, args.rounds)
        report = markdown(results, args.records, kafka, command, args.gc_freeze)
        report += f"\n\n{topic}: {partitions} partitions."
        print(report, flush=True)
        if args.profile:
            log("profiling the publisher")
            print("\n" + profile_publisher(settings, lines[:PROFILE_RECORDS]), flush=True)


if __name__ == "__main__":
    main()
