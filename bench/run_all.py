"""Every benchmark in one run on one broker; writes ``docs/benchmarks.md``.

``bench/run`` calls this. One LocalBroker (or ``--bootstrap``, an empty broker) serves,
in this order:

1. the broker's own limit: Kafka's ``ProducerPerformance`` and ``ConsumerPerformance``
   (``kafka-tools`` jars from the same cache as the broker) on a topic of their own, and
   raw aiokafka consuming that same topic;
2. the decision pipeline over one pre-loaded backlog (``decisions_throughput``): ours
   with one worker, ours with two workers in one group, the agent path, the naive agent,
   raw aiokafka, and the Quix Streams peer (``peers/quix_pension.py``, own venv);
3. latency from publish to decision at fixed rates, against the caught-up engine;
4. memory: a fresh worker's RSS and data-dir bytes per tracked person at two sizes;
5. publishing: raw aiokafka, ``Publisher.publish_many`` (``publish_throughput``) and the
   ``databus publish`` CLI as a subprocess;
6. the engine's cProfile and the publisher's (``--profile``).

Its report is ``bench/benchmarks.template.md`` with each ``{{name}}`` replaced by a
generated section; the prose lives in the template and survives regeneration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from tests.factories import sample_input

import decisions_throughput as dec
import publish_throughput as pub
from databus.catalog import CATALOG
from databus.client.files import Line
from databus.client.intake import Intake
from databus.client.publisher import Publisher
from databus.identity import Pseudonymizer
from databus.ops.kafka_dist import ensure_kafka_libs
from databus.ops.topics import apply_topics
from databus.settings import Settings
from databus.streams.names import changelog_topic
from databus.wire import Message

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TEMPLATE = BENCH / "benchmarks.template.md"
QUIX_VENV = BENCH / ".venv-quix"
QUIX_PEER = BENCH / "peers" / "quix_pension.py"
QUIX_VERSION = "3.28.1"
PERF_TOPIC = "bench.perf"
TIMES = "\N{MULTIPLICATION SIGN}"
log = pub.log


@dataclass(frozen=True)
class Sizes:
    perf_records: int
    publish_records: int
    publish_rounds: int
    pensioners: int
    events: int
    rounds: int
    rates: tuple[float, ...]
    latency_seconds: float
    memory_persons: tuple[int, ...]
    profile_events: int


FULL = Sizes(
    perf_records=1_000_000, publish_records=200_000, publish_rounds=3, pensioners=100_000,
    events=200_000, rounds=2, rates=(500, 2_000, 5_000), latency_seconds=20,
    memory_persons=(100_000, 1_000_000), profile_events=60_000,
)  # fmt: skip
QUICK = Sizes(
    perf_records=200_000, publish_records=40_000, publish_rounds=1, pensioners=10_000,
    events=40_000, rounds=1, rates=(500, 2_000), latency_seconds=5,
    memory_persons=(10_000, 50_000), profile_events=20_000,
)  # fmt: skip


def fmt(value: float) -> str:
    return f"{value:,.0f}"


def ratio(value: float, base: float) -> str:
    return f"{value / base:.0%}" if base else "n/a"


# --- 1. the broker's own limit ----------------------------------------------------------


def java_tool(settings: Settings, main_class: str, *args: str) -> str:
    libs = ensure_kafka_libs(settings.cache_dir)
    java = shutil.which("java") or "java"
    result = subprocess.run(  # noqa: S603 - Kafka's own tool from our jar cache
        [java, "-Xmx1g", "-cp", f"{libs}/*", main_class, *args],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"{main_class} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result.stdout


async def create_topic(settings: Settings, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, settings.replication_factor or 1)])
    finally:
        await admin.close()


@dataclass(frozen=True)
class BrokerLimits:
    record_size: int
    records: int
    produce_rate: float
    produce_mb: float
    produce_avg_ms: float
    consume_rate: float
    consume_mb: float
    raw_consume_rate: float


def producer_performance(settings: Settings, records: int, size: int) -> tuple[float, float, float]:
    """records/s, MB/s, average latency (ms) of Kafka's ProducerPerformance, with our
    producer's settings (idempotent, acks=all, linger 10 ms, 256 KiB batches)."""
    out = java_tool(
        settings, "org.apache.kafka.tools.ProducerPerformance",
        "--topic", PERF_TOPIC, "--num-records", str(records), "--record-size", str(size),
        "--throughput", "-1", "--producer-props",
        f"bootstrap.servers={settings.bootstrap_servers}", "acks=all", "linger.ms=10",
        "batch.size=262144", "enable.idempotence=true", "compression.type=none",
    )  # fmt: skip
    summary = [row for row in out.splitlines() if "records sent" in row][-1]
    match = re.search(r"([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency", summary)
    if match is None:
        raise SystemExit(f"unexpected ProducerPerformance output: {summary}")
    return float(match[1]), float(match[2]), float(match[3])


def consumer_performance(settings: Settings, records: int) -> tuple[float, float]:
    """records/s and MB/s of Kafka's ConsumerPerformance over the perf topic."""
    out = java_tool(
        settings, "org.apache.kafka.tools.ConsumerPerformance",
        "--bootstrap-server", settings.bootstrap_servers, "--topic", PERF_TOPIC,
        "--messages", str(records), "--timeout", "60000",
    )  # fmt: skip
    rows = [row for row in out.splitlines() if row.strip()]
    header = [c.strip() for c in rows[-2].split(",")]
    values = [c.strip() for c in rows[-1].split(",")]
    data = dict(zip(header, values, strict=False))
    # The whole-run rates include the group join; the fetch rates do not.
    return float(data["fetch.nMsg.sec"]), float(data["fetch.MB.sec"])


async def raw_consume(settings: Settings, records: int) -> float:
    """records/s of an AIOKafkaConsumer reading the perf topic from the beginning."""
    consumer = AIOKafkaConsumer(**settings.kafka_client_options(), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await dec.topic_partitions(consumer, [PERF_TOPIC])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen = 0
        started = time.perf_counter()
        while seen < records:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            seen += sum(len(batch) for batch in batches.values())
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def wire_size(message: Message) -> int:
    """Key, value and header bytes: what ProducerPerformance's record size stands for."""
    headers = sum(len(k) + len(v) for k, v in message.headers)
    return len(message.key or b"") + len(message.value) + headers


def broker_limits(settings: Settings, records: int, size: int) -> BrokerLimits:
    asyncio.run(create_topic(settings, PERF_TOPIC, settings.partitions))
    log(f"ProducerPerformance: {records:,} records of {size} bytes")
    rate, mb, avg = producer_performance(settings, records, size)
    log(f"  {rate:,.0f} records/s; ConsumerPerformance")
    consume, consume_mb = consumer_performance(settings, records)
    log(f"  {consume:,.0f} records/s; raw aiokafka consume")
    raw = asyncio.run(raw_consume(settings, records))
    log(f"  {raw:,.0f} records/s")
    return BrokerLimits(size, records, rate, mb, avg, consume, consume_mb, raw)


# --- 2. decisions: two workers and the Quix peer -----------------------------------------


def run_group(
    settings: Settings, workdir: Path, app_id: str, backlog: dec.Backlog, workers: int
) -> dec.Run:
    """``workers`` engine processes sharing one consumer group over the backlog."""
    before = asyncio.run(dec.end_offsets(settings, dec.DERIVED_TOPICS))
    started = time.time()
    with contextlib.ExitStack() as stack:
        processes = [
            stack.enter_context(
                dec.worker_process(
                    settings,
                    workdir,
                    f"{app_id}-{n}",
                    "ours",
                    "--app-id",
                    app_id,
                    "--data-dir",
                    str(workdir / f"{app_id}-{n}"),
                )
            )
            for n in range(workers)
        ]
        dec.wait_caught_up(
            settings, process=processes[0], group=app_id, topics=backlog.topics,
            workdir=workdir, name=f"{app_id}-0",
        )  # fmt: skip
        caught_up = time.time()
    first, last = asyncio.run(dec.write_window(settings, changelog_topic(app_id)))
    decisions = asyncio.run(dec.end_offsets(settings, dec.DERIVED_TOPICS)) - before
    writes = asyncio.run(dec.end_offsets(settings, [changelog_topic(app_id)]))
    return dec.Run(backlog.events, last - first, caught_up - started, decisions, writes)


def ensure_quix() -> Path:
    """``bench/.venv-quix`` with quixstreams and databus (editable), made on first use."""
    python = QUIX_VENV / "bin" / "python"
    if not python.exists():
        log(f"creating {QUIX_VENV} (quixstreams {QUIX_VERSION} + databus)")
        subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)  # noqa: S603
        subprocess.run(  # noqa: S603
            [str(python), "-m", "pip", "install", "-q", "-e", str(ROOT),
             f"quixstreams=={QUIX_VERSION}"],
            check=True,
        )  # fmt: skip
    return python


def run_quix(settings: Settings, workdir: Path, app_id: str, backlog: dec.Backlog) -> dec.Run:
    python = ensure_quix()
    before = asyncio.run(dec.end_offsets(settings, dec.DERIVED_TOPICS))
    out = workdir / f"{app_id}.json"
    started = time.time()
    with (workdir / f"{app_id}.log").open("ab") as output:
        process = subprocess.run(  # noqa: S603 - our own script
            [str(python), str(QUIX_PEER), *backlog.topics, "--group", app_id,
             "--state-dir", str(workdir / app_id), "--events", str(backlog.events),
             "--out", str(out)],
            env=dec.worker_env(settings, workdir), stdout=output, stderr=output,
            timeout=dec.WORKER_LIMIT_S * 2, check=False,
        )  # fmt: skip
    if process.returncode != 0 or not out.exists():
        raise dec.failed_run(workdir, app_id, f"exited with {process.returncode}")
    timing = orjson.loads(out.read_bytes())
    decisions = asyncio.run(dec.end_offsets(settings, dec.DERIVED_TOPICS)) - before
    return dec.Run(
        timing["events"], timing["last"] - timing["first"], timing["stopped"] - started,
        decisions,
    )  # fmt: skip


# --- 3. latency at fixed rates ----------------------------------------------------------


def latency_messages(settings: Settings, start: int, count: int, pensioners: int) -> list[Message]:
    """Strong evidence numbered from ``start``: later numbers lie a 31-day cycle later for
    the same pensioner, so each yields a ``confirmed``."""
    intake = Intake(CATALOG.get(dec.HOSPITAL), Pseudonymizer(settings.pseudonym_key_bytes()))
    messages = []
    for number in range(start, start + count):
        day = dec.EVIDENCE_START + dt.timedelta(
            days=dec.LATENCY_START_DAYS + dec.LATENCY_CYCLE_DAYS * (number // pensioners)
        )
        item = dec.hospital_visit(number, number % pensioners, day, f"L-{number:08d}")
        outcome = intake.from_line(item, where=f"latency record {number}")
        if not isinstance(outcome, Message):
            raise SystemExit(f"a latency record was rejected: {outcome.summary()}")
        messages.append(outcome)
    return messages


def measure_latencies(
    settings: Settings, workdir: Path, backlog: dec.Backlog, sizes: Sizes
) -> list[dec.Latency]:
    app_id = "bench-ours-1"
    results = []
    with dec.worker_process(
        settings, workdir, f"{app_id}-latency", "ours",
        "--app-id", app_id, "--data-dir", str(workdir / app_id),
    ) as process:  # fmt: skip
        dec.wait_caught_up(
            settings, process=process, group=app_id, topics=backlog.topics,
            workdir=workdir, name=f"{app_id}-latency",
        )  # fmt: skip
        start = 0
        for rate in sizes.rates:
            count = dec.LATENCY_WARMUP + int(rate * sizes.latency_seconds)
            messages = latency_messages(settings, start, count, sizes.pensioners)
            start += count
            log(f"latency: {count:,} events at {rate:,.0f}/s")
            results.append(asyncio.run(dec.paced_latency(settings, messages, rate, process.pid)))
    return results


# --- 4. memory --------------------------------------------------------------------------


def pensioner_range(start: int, stop: int) -> list[Line]:
    return [
        dec.line(
            person + 1,
            sample_input(
                dec.PENSIONER,
                dec.citizen_id(person),
                occurred_at="2026-01-05T09:00:00+08:00",
                pensioner_account=f"PA-{person:07d}",
                benefit_start=dec.BENEFIT_START,
            ),
        )
        for person in range(start, stop)
    ]


async def publish_lines(settings: Settings, dataset: str, lines: list[Line]) -> float:
    async with Publisher(settings) as publisher:
        started = time.perf_counter()
        summary = await publisher.publish_many(dataset, lines)
        if summary.accepted != len(lines):
            raise SystemExit(f"{dataset}: {summary.rejected} of {len(lines)} rejected")
        return time.perf_counter() - started


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def proc_kib(pid: int, field: str) -> int:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith(field + ":"):
            return int(row.split()[1])
    return 0


@dataclass(frozen=True)
class Memory:
    persons: int
    rss_mib: float
    peak_mib: float
    data_bytes: int
    changelog_records: int
    caught_up_s: float


def measure_memory(
    settings: Settings, workdir: Path, backlog: dec.Backlog, sizes: Sizes
) -> list[Memory]:
    """A fresh engine (one worker) over the backlog, then over more pensioners: RSS and
    data-dir bytes at each size, the worker restarted on its own data each time."""
    app_id = "bench-memory"
    data_dir = workdir / app_id
    persons = sizes.pensioners
    results = []
    topics = backlog.topics
    for target in sizes.memory_persons:
        if target > persons:
            log(f"memory: publishing pensioners {persons:,} to {target:,}")
            lines = pensioner_range(persons, target)
            asyncio.run(publish_lines(settings, dec.PENSIONER, lines))
            del lines
            gc.collect()
            persons = target
        started = time.time()
        with dec.worker_process(
            settings, workdir, f"{app_id}-{target}", "ours", "--app-id", app_id,
            "--data-dir", str(data_dir),
        ) as process:  # fmt: skip
            dec.wait_caught_up(
                settings, process=process, group=app_id, topics=topics, workdir=workdir,
                name=f"{app_id}-{target}",
            )  # fmt: skip
            caught_up = time.time() - started
            time.sleep(3)  # let the last batch's writes land
            rss = proc_kib(process.pid, "VmRSS") / 1024
            peak = proc_kib(process.pid, "VmHWM") / 1024
        writes = asyncio.run(dec.end_offsets(settings, [changelog_topic(app_id)]))
        results.append(Memory(persons, rss, peak, dir_bytes(data_dir), writes, caught_up))
        log(f"memory: {persons:,} persons, RSS {rss:,.0f} MiB, {dir_bytes(data_dir):,} bytes")
    return results


# --- 5. publish CLI ---------------------------------------------------------------------


def cli_publish(settings: Settings, workdir: Path, lines: list[Line]) -> tuple[float, float]:
    """Wall seconds of ``databus publish`` over ``lines`` and over one line (startup)."""
    env = dec.worker_env(settings, workdir)
    databus = str(Path(sys.executable).with_name("databus"))
    times = []
    for name, chosen in (("one", lines[:1]), ("all", lines)):
        path = workdir / f"cli-{name}.ndjson"
        path.write_bytes(b"\n".join(line.raw for line in chosen) + b"\n")
        started = time.perf_counter()
        subprocess.run(  # noqa: S603 - our own CLI
            [databus, "publish", pub.DATASET, str(path), "--no-progress"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        times.append(time.perf_counter() - started)
    return times[1], times[0]


# --- report -----------------------------------------------------------------------------


def broker_section(limits: BrokerLimits, publish: pub.Results) -> str:
    raw_send = statistics.median(publish.rates["raw"])
    raw_batch = statistics.median(publish.rates["raw_batch"])
    ours = statistics.median(publish.rates["publisher"])
    base = limits.produce_rate
    return "\n".join([
        f"{limits.records:,} records of {limits.record_size} bytes (the mean size of the "
        f"`{pub.DATASET}` messages below: key, value and CloudEvents headers; the tool "
        f"sends that many value bytes and no headers) on `{PERF_TOPIC}`, with the "
        "catalog topics' partition count:",
        "",
        "| tool | records/s | MB/s | share of the broker's limit |",
        "|---|---:|---:|---:|",
        f"| Kafka `ProducerPerformance` (acks=all, idempotent, linger 10 ms, 256 KiB "
        f"batches) | {fmt(base)} | {limits.produce_mb:.1f} | 100% |",
        f"| raw aiokafka `send()` (publish benchmark (a)) | {fmt(raw_send)} | | "
        f"{ratio(raw_send, base)} |",
        f"| raw aiokafka batch API (publish benchmark (d)) | {fmt(raw_batch)} | | "
        f"{ratio(raw_batch, base)} |",
        f"| `Publisher.publish_many` (publish benchmark (b)) | {fmt(ours)} | | "
        f"{ratio(ours, base)} |",
        f"| Kafka `ConsumerPerformance` (fetch rate, after the group join) | "
        f"{fmt(limits.consume_rate)} | {limits.consume_mb:.1f} | 100% |",
        f"| raw aiokafka `getmany()` over the same topic | {fmt(limits.raw_consume_rate)} | | "
        f"{ratio(limits.raw_consume_rate, limits.consume_rate)} |",
        "",
        f"ProducerPerformance's average send latency: {limits.produce_avg_ms:,.0f} ms "
        "(at full speed: queueing, not a latency figure). The Java tools run on the same "
        "2 vCPUs as the broker.",
    ])  # fmt: skip


def cli_section(count: int, total: float, startup: float, publish: pub.Results) -> str:
    sdk = statistics.median(publish.rates["publisher"])
    net = max(total - startup, 1e-9)
    return "\n".join([
        f"`databus publish {pub.DATASET} FILE --no-progress` as a subprocess over an NDJSON "
        f"file of the same {count:,} records, timed from launch to exit:",
        "",
        "| | seconds | records/s | share of the SDK's rate |",
        "|---|---:|---:|---:|",
        f"| one-line file (startup, connect, one send, exit) | {startup:.2f} | | |",
        f"| {count:,} lines, total | {total:.2f} | {fmt(count / total)} | "
        f"{ratio(count / total, sdk)} |",
        f"| {count:,} lines, minus the one-line run | {net:.2f} | {fmt(count / net)} | "
        f"{ratio(count / net, sdk)} |",
        "",
        f"Per record: {total / count * 1e6:.1f} µs including startup, "
        f"{net / count * 1e6:.1f} µs without.",
    ])  # fmt: skip


def peers_section(two: list[dec.Run], quix: list[dec.Run], results: dec.Results) -> str:
    ours = [run.rate for run in results.runs["ours"]]
    rows = [
        "| variant | " + " | ".join(f"round {n + 1}" for n in range(len(ours))) + " | median "
        "| median ratio to one worker |",
        "|---|" + "---:|" * (len(ours) + 2),
        f"| (1) ours, one worker (from the table above) | {' | '.join(map(fmt, ours))} "
        f"| {fmt(statistics.median(ours))} | 1.00{TIMES} |",
    ]
    for label, runs in (
        ("(1c) ours, two workers in one group (two processes)", two),
        (f"(4) Quix Streams {QUIX_VERSION} peer, same rule and decode", quix),
    ):
        rates = [run.rate for run in runs]
        ratios = [r / o for r, o in zip(rates, ours, strict=True)]
        rows.append(
            f"| {label} | {' | '.join(map(fmt, rates))} | {fmt(statistics.median(rates))} "
            f"| {statistics.median(ratios):.2f}{TIMES} |"
        )
    rows += ["", "| variant | " + " | ".join(f"round {n + 1}" for n in range(len(ours))) + " |",
             "|---|" + "---|" * len(ours)]  # fmt: skip
    for label, runs in (("two workers", two), ("quix", quix)):
        cells = " | ".join(
            f"{run.window_s:.1f} s / {run.start_to_caught_up_s:.1f} s / {run.decisions:,}"
            for run in runs
        )
        rows.append(f"| {label}: window / launch → done / decisions | {cells} |")
    return "\n".join(rows)


def latency_section(latencies: list[dec.Latency]) -> str:
    rows = [
        "| rate (events/s) | events | decided | p50 | p90 | p99 | max | worker CPU |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lat in latencies:
        if not lat.seconds:
            rows.append(f"| {fmt(lat.rate)} | {lat.sent:,} | 0 | | | | | |")
            continue
        cells = " | ".join(
            f"{v * 1000:,.0f} ms"
            for v in (lat.quantile(0.5), lat.quantile(0.9), lat.quantile(0.99), lat.seconds[-1])
        )
        rows.append(
            f"| {fmt(lat.rate)} | {lat.sent:,} | {lat.received:,} | {cells} "
            f"| {lat.worker_cpu:.0%} |"
        )
    return "\n".join(rows)


def memory_section(memory: list[Memory]) -> str:
    rows = [
        "| tracked persons | worker RSS | peak RSS | data dir (RocksDB) | bytes per person "
        "| changelog records | launch → caught up |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows += [
        f"| {m.persons:,} | {m.rss_mib:,.0f} MiB | {m.peak_mib:,.0f} MiB "
        f"| {m.data_bytes / 2**20:,.1f} MiB | {m.data_bytes / m.persons:,.0f} "
        f"| {m.changelog_records:,} | {m.caught_up_s:.0f} s |"
        for m in memory
    ]
    if len(memory) > 1:
        a, b = memory[0], memory[-1]
        marginal = (b.data_bytes - a.data_bytes) / (b.persons - a.persons)
        rss = (b.rss_mib - a.rss_mib) * 2**20 / (b.persons - a.persons)
        rows += [
            "",
            f"Between the two sizes: {marginal:,.0f} bytes of data dir and {rss:,.0f} bytes "
            "of RSS per additional person.",
        ]
    return "\n".join(rows)


def summary_section(  # noqa: PLR0917 - one call site, every figure
    limits: BrokerLimits, publish: pub.Results, cli_rate: float, results: dec.Results,
    two: list[dec.Run], quix: list[dec.Run], latencies: list[dec.Latency], memory: list[Memory],
) -> str:  # fmt: skip
    med = statistics.median
    ours = results.median_rate("ours")
    sdk = med(publish.rates["publisher"])

    def r(runs: list[dec.Run]) -> float:
        return med(run.rate for run in runs)

    def launched(runs: list[dec.Run]) -> float:
        """Events/s from launching the process(es) to caught up: startup included."""
        return med(run.events / run.start_to_caught_up_s for run in runs)

    rows = [
        "| figure | measured | baseline | ratio |",
        "|---|---:|---|---:|",
        f"| Kafka `ProducerPerformance` | {fmt(limits.produce_rate)} rec/s | — | |",
        f"| Kafka `ConsumerPerformance` | {fmt(limits.consume_rate)} rec/s | — | |",
        f"| raw aiokafka produce (`send()`) | {fmt(med(publish.rates['raw']))} rec/s "
        f"| ProducerPerformance | {ratio(med(publish.rates['raw']), limits.produce_rate)} |",
        f"| raw aiokafka consume | {fmt(limits.raw_consume_rate)} rec/s | ConsumerPerformance "
        f"| {ratio(limits.raw_consume_rate, limits.consume_rate)} |",
        f"| `databus publish`, SDK | {fmt(sdk)} rec/s | raw aiokafka `send()` "
        f"| {ratio(sdk, med(publish.rates['raw']))} |",
        f"| `databus publish`, SDK | {fmt(sdk)} rec/s | ProducerPerformance "
        f"| {ratio(sdk, limits.produce_rate)} |",
        f"| `databus publish`, CLI (incl. startup) | {fmt(cli_rate)} rec/s | SDK "
        f"| {ratio(cli_rate, sdk)} |",
        f"| decisions, ours, one worker | {fmt(ours)} ev/s | raw aiokafka loop "
        f"| {ratio(ours, results.median_rate('raw'))} |",
        f"| decisions, ours, two workers | {fmt(r(two))} ev/s | ours, one worker "
        f"| {ratio(r(two), ours)} |",
        f"| decisions, naive Faust agent | {fmt(results.median_rate('naive'))} ev/s "
        f"| ours, one worker | {ratio(results.median_rate('naive'), ours)} |",
        f"| decisions, Faust agent path | {fmt(results.median_rate('agent'))} ev/s "
        f"| ours, one worker | {ratio(results.median_rate('agent'), ours)} |",
        f"| decisions, Quix Streams peer | {fmt(r(quix))} ev/s | ours, one worker "
        f"| {ratio(r(quix), ours)} |",
    ]
    one = launched(results.runs["ours"])
    rows += [
        f"| decisions from launch to caught up (startup included), {label} "
        f"| {fmt(launched(runs))} ev/s | ours, one worker, same measure "
        f"| {ratio(launched(runs), one)} |"
        for label, runs in (
            ("ours, one worker", results.runs["ours"]),
            ("ours, two workers", two),
            ("naive", results.runs["naive"]),
            ("Quix Streams", quix),
        )
    ]
    rows += [
        f"| latency p50 / p99 at {fmt(lat.rate)} ev/s | "
        f"{lat.quantile(0.5) * 1000:,.0f} / {lat.quantile(0.99) * 1000:,.0f} ms | | |"
        for lat in latencies
        if lat.seconds
    ]
    rows += [
        f"| state at {m.persons:,} persons | {m.data_bytes / m.persons:,.0f} B/person, "
        f"RSS {m.rss_mib:,.0f} MiB | | |"
        for m in memory
    ]
    return "\n".join(rows)


def render(sections: dict[str, str]) -> str:
    text = TEMPLATE.read_text()
    for name, body in sections.items():
        text = text.replace("{{" + name + "}}", body)
    missing = re.findall(r"\{\{(\w+)\}\}", text)
    if missing:
        raise SystemExit(f"the template has placeholders nobody filled: {missing}")
    return text


GIT = shutil.which("git") or "git"


def git(*args: str) -> str:
    result = subprocess.run(  # noqa: S603 - git on our own checkout
        [GIT, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return result.stdout.strip()


def source_state() -> str:
    """The commit and whether ``src/`` differs from it: workers run the working tree."""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = bool(git("status", "--porcelain", "--", "src"))
    return head + (" + uncommitted src/" if dirty else "")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a few minutes")
    parser.add_argument("--bootstrap", help="use this (empty) broker instead of starting one")
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "benchmarks.md", help="report file"
    )
    parser.add_argument(
        "--render-only",
        type=Path,
        metavar="SECTIONS_JSON",
        help="measure nothing: fill the template with the sections a run saved "
        "(bench/results/sections-full.json), e.g. after editing the prose",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:  # noqa: PLR0915 - one straight sequence
    args = parse_args(argv)
    if args.render_only is not None:
        args.out.write_text(render(orjson.loads(args.render_only.read_bytes())))
        log(f"wrote {args.out} from {args.render_only}")
        return
    sizes = QUICK if args.quick else FULL
    command = "bench/run" + (" --quick" if args.quick else "")
    began = time.monotonic()
    source_before = source_state()
    started_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with (
        pub.broker(args.bootstrap) as (bootstrap, kafka),
        tempfile.TemporaryDirectory(prefix="databus-bench-run-") as temp,
    ):
        workdir = Path(temp)
        (workdir / "no-config.toml").write_text("")
        settings = Settings(
            bootstrap_servers=bootstrap, pseudonym_key=dec.PSEUDONYM_KEY,  # type: ignore[arg-type]
            demo=False, partitions=args.partitions,
        )  # fmt: skip
        asyncio.run(apply_topics(settings))
        log(f"topics applied ({args.partitions} partitions); logs in {workdir}")
        lines = pub.make_lines(sizes.publish_records)
        messages = pub.precompute(settings, lines)
        size = round(statistics.mean(wire_size(m) for m in messages))
        limits = broker_limits(settings, sizes.perf_records, size)

        backlog = asyncio.run(dec.load_backlog(settings, sizes.pensioners, sizes.events))
        gc.collect()
        results = dec.measure(settings, workdir, backlog, sizes.rounds)
        two, quix = [], []
        for number in range(sizes.rounds):
            two.append(run_group(settings, workdir, f"bench-two-{number + 1}", backlog, 2))
            log(f"round {number + 1}: two workers {two[-1].rate:,.0f} events/s")
            quix.append(run_quix(settings, workdir, f"bench-quix-{number + 1}", backlog))
            log(f"round {number + 1}: quix {quix[-1].rate:,.0f} events/s")
        decisions = dec.markdown(
            results, backlog, {}, partitions=args.partitions, kafka=kafka, command=command
        )
        latencies = measure_latencies(settings, workdir, backlog, sizes)
        memory = measure_memory(settings, workdir, backlog, sizes)
        log("engine profile")
        engine_profile = dec.profile_engine(settings, workdir, sizes.profile_events)

        log(f"publish: {sizes.publish_records:,} records, {sizes.publish_rounds} round(s)")
        gc.collect()
        gc.freeze()
        publish = pub.measure(settings, lines, messages, sizes.publish_rounds)
        gc.unfreeze()
        cli_total, cli_startup = cli_publish(settings, workdir, lines)
        log(f"CLI: {cli_total:.1f} s for {len(lines):,} lines, {cli_startup:.1f} s for one")
        publish_profile = pub.profile_publisher(settings, lines[: pub.PROFILE_RECORDS])
        publish_report = pub.markdown(publish, sizes.publish_records, kafka, command, frozen=True)
    minutes = (time.monotonic() - began) / 60
    load = os.getloadavg()
    label = (
        "QUICK run: small sizes, for trying the script; not the figures to quote"
        if args.quick
        else "full run"
    )
    run = (
        f"Generated by `{command}` on {started_at} in {minutes:.0f} minutes "
        f"({label}); "
        f"load average at the end {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f} on "
        f"{len(os.sched_getaffinity(0))} vCPUs. Code: {source_before} at the start, "
        f"{source_state()} at the end (each worker process runs the tree as it was when "
        "it started)."
    )  # fmt: skip
    sections = {
        "run": run,
        "summary": summary_section(
            limits,
            publish,
            sizes.publish_records / cli_total,
            results,
            two,
            quix,
            latencies,
            memory,
        ),
        "broker": broker_section(limits, publish),
        "publish": publish_report,
        "cli": cli_section(sizes.publish_records, cli_total, cli_startup, publish),
        "publish_profile": publish_profile,
        "decisions": decisions,
        "peers": peers_section(two, quix, results),
        "latency": latency_section(latencies),
        "memory": memory_section(memory),
        "engine_profile": engine_profile,
    }
    saved = BENCH / "results" / f"sections-{'quick' if args.quick else 'full'}.json"
    saved.parent.mkdir(exist_ok=True)
    saved.write_bytes(orjson.dumps(sections, option=orjson.OPT_INDENT_2))
    args.out.write_text(render(sections))
    log(f"wrote {args.out} after {minutes:.0f} minutes")


if __name__ == "__main__":
    main()
