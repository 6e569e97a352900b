"""Several ``databus worker`` processes on one machine, as the README says to start them.

Before: a second worker with the default data dir died on RocksDB's lock (``IO error:
While lock file ... LOCK: Resource temporarily unavailable``), and the state gauge of a
worker counted every partition database it had open, its standby copies included, from
RocksDB's key estimate (99,299 "persons" for a 20,000-resident province).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from databus.client.publisher import Publisher
from databus.ops.processes import free_ports
from databus.rules import load_policy
from databus.settings import Settings
from databus.streams.admission import RESERVED_PREFIX
from databus.streams.clock import local_today
from databus.streams.names import changelog_topic
from tests.factories import make_citizen_id, sample_input
from tests.integration.bus import read_records, run_cli
from tests.integration.workers import (
    TEST_KEY,
    fresh_bus,
    spawn_databus,
    stop_worker,
    wait_caught_up,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PENSIONERS = 120
INPUTS = ["hrss.pensioner.v1", "system.clock.v1"]
TODAY = local_today(load_policy().time_zone)


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Path]]:
    tmp = tmp_path_factory.mktemp("workers-on-one-machine")
    with fresh_bus(tmp, Settings().cache_dir) as settings:
        yield settings, tmp


def _env(settings: Settings, state_dir: Path) -> dict[str, str]:
    return os.environ | {
        "DATABUS_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "DATABUS_PSEUDONYM_KEY": TEST_KEY,
        "DATABUS_PARTITIONS": str(settings.partitions),
        "DATABUS_STATE_DIR": str(state_dir),
    }


def _worker(settings: Settings, state_dir: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    """``databus worker`` without ``--data-dir``, as a user on one machine starts it."""
    args = ("worker", "--web-port", str(port), "--session-timeout", "10", *extra)
    log = state_dir.parent / f"{state_dir.name}-worker-{port}.log"
    return spawn_databus(_env(settings, state_dir), log, *args)


def _persons_gauge(port: int) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
            text = page.read().decode()
    except OSError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "databus_worker_state_persons":
                return sample.value
    return None


async def _publish(settings: Settings) -> None:
    records = [
        sample_input(
            "hrss.pensioner.v1",
            make_citizen_id("370102", dt.date(1950, 1, 1) + dt.timedelta(days=n), 10 + n % 80),
            occurred_at="2026-01-05T09:00:00+08:00",
            benefit_start=str(TODAY - dt.timedelta(days=200)),
        )
        for n in range(PENSIONERS)
    ]
    async with Publisher(settings) as publisher:
        summary = await publisher.publish_many("hrss.pensioner.v1", records)
    assert summary.accepted == PENSIONERS, summary


def _persons_in_changelog(settings: Settings) -> int:
    """The persons of the table: distinct non-reserved keys of its changelog."""
    records = asyncio.run(read_records(settings, [changelog_topic()]))
    keys = {r.key for r in records if r.key and not r.key.startswith(RESERVED_PREFIX)}
    return len(keys)


def test_two_workers_share_the_partitions_and_count_only_their_own(
    bus: tuple[Settings, Path],
) -> None:
    settings, tmp = bus
    state_dir = tmp / "state"
    ports = free_ports(2)
    first = _worker(settings, state_dir, ports[0])
    second: subprocess.Popen[bytes] | None = None
    try:
        asyncio.run(_publish(settings))
        ticked = run_cli(settings, "clock", "tick", "--date", str(TODAY))
        assert ticked.returncode == 0, ticked.stderr
        asyncio.run(wait_caught_up(settings, INPUTS, limit_s=180))
        persons = _persons_in_changelog(settings)
        assert persons == PENSIONERS
        assert _wait_for_gauges(ports[:1], persons) == [persons]
        # A second worker joins: the partitions are shared, and so is the count.
        second = _worker(settings, state_dir, ports[1])
        gauges = _wait_for_gauges(ports, persons, each=True)
        assert sum(gauges) == persons, gauges
        assert all(g > 0 for g in gauges), gauges
        assert first.poll() is None, "the first worker died"
        assert second.poll() is None, "the second worker died"
        # Each worker took a slot of its own; the lock file names the process holding it.
        assert {p.name for p in state_dir.iterdir() if p.is_dir()} == {"worker", "worker-2"}
        pids = {(state_dir / d / "worker.lock").read_text().strip() for d in ("worker", "worker-2")}
        assert pids == {str(first.pid), str(second.pid)}
    finally:
        stop_worker(first)
        if second is not None:
            stop_worker(second)


def _wait_for_gauges(ports: list[int], persons: int, *, each: bool = False) -> list[float]:
    """The workers' state gauges once they add up to ``persons`` (and, with ``each``,
    every worker holds some), or as they are after a minute: a worker that has just
    joined reports once the group's rebalance and its table's recovery are done."""
    deadline = time.monotonic() + 60
    while True:
        gauges = [_persons_gauge(port) or 0.0 for port in ports]
        settled = sum(gauges) == persons and (not each or all(gauges))
        if settled or time.monotonic() > deadline:
            return gauges
        time.sleep(0.5)


def test_a_worker_given_a_busy_data_dir_refuses_in_one_line(bus: tuple[Settings, Path]) -> None:
    settings, tmp = bus
    state_dir = tmp / "busy"
    port = free_ports(1)[0]
    holder = _worker(settings, state_dir, port)
    try:
        lock = state_dir / "worker" / "worker.lock"
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.2)
        env = _env(settings, state_dir)
        refused = subprocess.run(
            [
                *(sys.executable, "-m", "databus", "worker"),
                *("--data-dir", str(state_dir / "worker")),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert refused.returncode != 0
        message = refused.stderr.strip()
        assert message.count("\n") == 0, message
        assert f"another worker (pid {holder.pid}) is using the data dir" in message
        assert "--data-dir" in message
    finally:
        stop_worker(holder, kill=True)
    # A killed worker's slot is free again: the kernel dropped its lock with the process.
    again = _worker(settings, state_dir, port)
    try:
        deadline = time.monotonic() + 60
        lock = state_dir / "worker" / "worker.lock"
        while lock.read_text().strip() != str(again.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert lock.read_text().strip() == str(again.pid)
        assert not (state_dir / "worker-2").exists()
    finally:
        stop_worker(again)
