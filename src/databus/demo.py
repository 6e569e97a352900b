"""The main job on one laptop: a synthetic province through the bus into decisions.

:class:`Demo` starts a demo broker of its own (the embedded one, in ``<state dir>/demo``,
on free ports, from empty, formatted with a demo cluster id so that the public demo key
works against it and nowhere else), applies the topics, starts one ``databus worker`` process with
its metrics on ``--web-port``, publishes a simulated province day by day with a clock
tick after each day, waits until the worker has committed everything, and reads the
summary from the worker's own ``/metrics`` (so that the summary is what an operator's
Prometheus would see). It stops what it started unless told to keep it running.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from databus.catalog import CATALOG, CLOCK
from databus.client.publisher import Publisher
from databus.errors import DemoError
from databus.ops.broker import LocalBroker, free_ports
from databus.ops.private_files import (
    PRIVATE_UMASK,
    open_private_append,
    private_dir,
    write_private,
)
from databus.ops.topics import apply_topics
from databus.settings import Settings
from databus.sim import Province, PublishedSimulation, SimulationConfig, publish_province
from databus.streams.names import APP_ID

#: How long the worker may take to catch up after the last record was published.
CATCH_UP_LIMIT_S = 600.0
#: How long to wait for the worker's web server (it starts after table recovery).
METRICS_WAIT_S = 60.0
POLL_S = 0.5


@dataclass(frozen=True)
class DemoOptions:
    """What to simulate and how to run it."""

    seed: int = 7
    residents: int = 20_000
    days: int = 400
    start: dt.date = dt.date(2025, 1, 1)
    web_port: int = 6066
    keep_running: bool = False


@dataclass
class DemoSummary:
    """What the demo did, as the worker's metrics report it."""

    bootstrap: str
    metrics_url: str
    residents: int
    days: int
    published: int
    """Records accepted by the publisher (clock ticks not included)."""
    rejected_by_publisher: int
    ticks: int
    events_in: int
    """Input events the worker handled (records and ticks), from its metrics."""
    dead_letters: int
    """Input messages the worker dead-lettered, from its metrics."""
    decisions: dict[str, dict[str, int]] = field(default_factory=dict)
    """Derived dataset → decision kind → count, from the worker's metrics."""
    seconds: float = 0.0
    """From the first record published to the worker having committed the last one."""

    @property
    def events_per_second(self) -> float:
        return self.events_in / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"events_per_second": round(self.events_per_second, 1)}


class Demo:
    """One demo run; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        options: DemoOptions,
        *,
        on_progress: Callable[[int, int], None] | None = None,
        on_step: Callable[[str], None] | None = None,
    ) -> None:
        self.options = options
        self.home = settings.state_dir / "demo"
        self._settings = settings
        self._on_progress = on_progress
        self._on_step = on_step or (lambda _: None)

    # --- lifecycle ---------------------------------------------------------------------

    def run(self) -> DemoSummary:
        """Run the demo; stops what it started unless ``keep_running``."""
        stop(self._settings)  # a previous demo kept running: start from empty
        shutil.rmtree(self.home, ignore_errors=True)
        private_dir(self.home)  # the worker's tables and logs are about (synthetic) people
        port, controller = free_ports(2)
        broker = LocalBroker(self.home, self._settings.cache_dir, port, controller, demo=True)
        worker: subprocess.Popen[bytes] | None = None
        try:
            self._on_step(f"starting the embedded Kafka broker on {broker.bootstrap}")
            settings = self._settings.model_copy(
                update={"bootstrap_servers": broker.start(), "demo": True, "pseudonym_key": None}
            )
            asyncio.run(apply_topics(settings))
            self._on_step("starting a decision worker")
            worker = self._start_worker(settings)
            summary = asyncio.run(self._simulate(settings, worker))
        except BaseException:
            self._stop(worker, broker)
            raise
        if not self.options.keep_running:
            self._stop(worker, broker)
        return summary

    def _start_worker(self, settings: Settings) -> subprocess.Popen[bytes]:
        env = os.environ | {
            "DATABUS_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "DATABUS_DEMO": "1",
            "DATABUS_PARTITIONS": str(settings.partitions),
        }
        command = [
            *(sys.executable, "-m", "databus", "worker"),
            *("--data-dir", str(self.home / "worker")),
            *("--web-port", str(self.options.web_port), "--session-timeout", "10"),
        ]
        log = open_private_append(self.home / "worker.log")
        try:
            process = subprocess.Popen(  # noqa: S603 - our own CLI
                command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                umask=PRIVATE_UMASK,
            )
        finally:
            os.close(log)
        write_private(self.home / "worker.pid", str(process.pid))
        return process

    def _stop(self, worker: subprocess.Popen[bytes] | None, broker: LocalBroker) -> None:
        if worker is not None:
            _terminate(worker.pid)
            (self.home / "worker.pid").unlink(missing_ok=True)
        broker.stop()

    # --- the run -----------------------------------------------------------------------

    async def _simulate(self, settings: Settings, worker: subprocess.Popen[bytes]) -> DemoSummary:
        options = self.options
        province = Province(
            SimulationConfig(
                seed=options.seed, residents=options.residents, start=options.start,
                days=options.days,
            )
        )  # fmt: skip
        expected = province.summary().total
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            if self._on_progress is not None:
                self._on_progress(done, expected)

        self._on_step(
            f"publishing {options.residents:,} residents over {options.days} days "
            "with a clock tick after each day"
        )
        started = time.monotonic()
        async with Publisher(settings) as publisher:
            published = await publish_province(province, publisher, ticks=True, on_records=advance)
        self._on_step("waiting for the worker to catch up")
        await _caught_up(settings, worker, self.home / "worker.log")
        seconds = time.monotonic() - started
        return self._summary(settings, published, seconds)

    def _summary(
        self, settings: Settings, published: PublishedSimulation, seconds: float
    ) -> DemoSummary:
        url = f"http://127.0.0.1:{self.options.web_port}/metrics"
        samples = _scrape(url, METRICS_WAIT_S)
        decisions: dict[str, dict[str, int]] = {}
        for labels, value in samples.get("databus_worker_decisions_total", []):
            kinds = decisions.setdefault(labels["dataset"], {})
            kinds[labels["kind"]] = kinds.get(labels["kind"], 0) + int(value)
        return DemoSummary(
            bootstrap=settings.bootstrap_servers,
            metrics_url=url,
            residents=self.options.residents,
            days=self.options.days,
            published=published.accepted.total(),
            rejected_by_publisher=published.rejected.total(),
            ticks=published.days_ticked * settings.partitions,
            events_in=_total(samples, "databus_worker_events_total"),
            dead_letters=_total(samples, "databus_worker_dead_letters_total"),
            decisions=decisions,
            seconds=seconds,
        )


def stop(settings: Settings) -> bool:
    """Stop a demo left running (``--keep-running``); ``False`` if none was."""
    home = settings.state_dir / "demo"
    stopped = False
    pid_file = home / "worker.pid"
    if pid_file.exists():
        pid = pid_file.read_text().strip()
        if pid.isdigit():
            stopped = _terminate(int(pid))
        pid_file.unlink(missing_ok=True)
    if (home / "broker").exists():
        stopped = LocalBroker(home, settings.cache_dir).stop() or stopped
    return stopped


def _terminate(pid: int, timeout: float = 20.0) -> bool:
    """SIGTERM the process group ``pid`` leads (the worker), SIGKILL after ``timeout``."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                return True
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True


async def _caught_up(settings: Settings, worker: subprocess.Popen[bytes], log: Path) -> None:
    """Return once the worker's group has committed the end of every input topic."""
    topics = [d.topic for d in CATALOG.sources()] + [CLOCK.topic]
    consumer = AIOKafkaConsumer(
        **settings.kafka_client_options(), group_id=APP_ID, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in range(settings.partitions)]
        ends = await consumer.end_offsets(partitions)
        deadline = time.monotonic() + CATCH_UP_LIMIT_S
        while True:
            if worker.poll() is not None:
                raise DemoError(f"the worker exited with {worker.returncode}; see {log}")
            behind = [tp for tp in partitions if (await consumer.committed(tp) or 0) < ends[tp]]
            if not behind:
                return
            if time.monotonic() > deadline:
                raise DemoError(f"the worker did not catch up in {CATCH_UP_LIMIT_S:.0f} s")
            await asyncio.sleep(POLL_S)
    finally:
        await consumer.stop()


Samples = dict[str, list[tuple[dict[str, str], float]]]


def _scrape(url: str, wait_s: float) -> Samples:
    """The samples of ``url``'s Prometheus text, by sample name."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our URL
                text = response.read().decode()
            break
        except OSError as error:
            if time.monotonic() > deadline:
                raise DemoError(f"cannot read the worker's metrics at {url}: {error}") from error
            time.sleep(POLL_S)
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def _total(samples: Samples, name: str) -> int:
    return int(sum(value for _, value in samples.get(name, [])))


def format_decisions(summary: DemoSummary) -> Sequence[tuple[str, str, int]]:
    """(dataset, kind, count) rows in a stable order."""
    return [
        (dataset, kind, count)
        for dataset, kinds in sorted(summary.decisions.items())
        for kind, count in sorted(kinds.items())
    ]
