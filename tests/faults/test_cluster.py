"""A local three-broker cluster (``databus broker start --nodes 3``), and a leader killed.

The cluster is three KRaft nodes from the same jars as the single broker. ``topics
apply`` gives every topic three replicas and ``min.insync.replicas=2``. Then
``Publisher.publish_many`` sends 150,000 records, and once the first 20,000 are
acknowledged the test SIGKILLs the broker that leads partition 0 (a crash: nothing is
flushed). The publisher must ride it out on the two others: every record it reports
accepted is in the topic exactly once. The killed node is started again and must catch
up until it is back in every partition's in-sync replicas.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from databus.catalog import CATALOG
from databus.client.intake import Intake
from databus.client.publisher import IN_FLIGHT, Publisher
from databus.identity import Pseudonymizer
from databus.ops.broker import LocalBroker
from databus.ops.cluster import PORT_STEP, LocalCluster
from databus.ops.processes import free_port_run
from databus.rules import load_policy
from databus.settings import Settings
from databus.sim import SimulationConfig
from databus.wire import Message
from tests.conftest import TEST_KEY
from tests.faults.chaos import WorkerProcess, drive
from tests.faults.conftest import Note
from tests.faults.scenario import DERIVED, build_scenario, decide_in_memory, facts_of
from tests.faults.test_broker_restart import (
    DATASET,
    RECORDS,
    _ce_ids,
    _records,
    own_bus_settings,
)
from tests.integration.bus import read_events

pytestmark = [pytest.mark.faults, pytest.mark.timeout(420)]

NODES = 3
#: The kill test's province (about 100,000 events, some 30 s of work for one worker).
PROVINCE = SimulationConfig(seed=7, residents=40_000, days=60, start=dt.date(2025, 1, 1))
#: The leader is killed this long after the scenario starts, restarted this long after.
KILL_AT_S = 8.0
DOWN_S = 10.0
KILL_AFTER = IN_FLIGHT
ISR_LIMIT_S = 120.0


@contextmanager
def _own_cluster(directory: Path) -> Iterator[tuple[LocalCluster, Settings]]:
    base = free_port_run(PORT_STEP * NODES)
    cluster = LocalCluster(directory, Settings().cache_dir, NODES, base, base + 1)
    bootstrap = cluster.start()
    try:
        yield cluster, own_bus_settings(bootstrap)
    finally:
        cluster.stop()


async def _partitions(settings: Settings, topic: str) -> list[dict[str, object]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        partitions: list[dict[str, object]] = described["partitions"]
        return partitions
    finally:
        await admin.close()


async def _topic_config(settings: Settings, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]
        )
        return {entry[0]: entry[1] for entry in response.resources[0][4]}
    finally:
        await admin.close()


def _leader(cluster: LocalCluster, settings: Settings) -> LocalBroker:
    partitions = asyncio.run(_partitions(settings, DATASET))
    (first,) = [p for p in partitions if p["partition"] == 0]
    leader = first["leader"]
    assert isinstance(leader, int)
    return cluster.nodes()[leader - 1]


def test_topics_on_the_cluster_have_three_replicas_two_in_sync(tmp_path: Path) -> None:
    with _own_cluster(tmp_path) as (cluster, settings):
        assert len(cluster.status().running) == NODES
        for partition in asyncio.run(_partitions(settings, DATASET)):
            assert sorted(partition["replicas"]) == [1, 2, 3]  # type: ignore[call-overload]
            assert sorted(partition["isr"]) == [1, 2, 3]  # type: ignore[call-overload]
        config = asyncio.run(_topic_config(settings, DATASET))
        assert config["min.insync.replicas"] == "2"
        assert config["retention.ms"] == CATALOG.get(DATASET).topic_config()["retention.ms"]


def test_killing_a_partition_leader_mid_publish_loses_nothing(
    tmp_path: Path, figures: Note
) -> None:
    records = _records()
    intake = Intake(CATALOG.get(DATASET), Pseudonymizer(TEST_KEY))
    messages = [intake.from_mapping(record) for record in records]
    expected = {m.id.encode() for m in messages if isinstance(m, Message)}
    assert len(expected) == RECORDS

    with _own_cluster(tmp_path) as (cluster, settings):
        victim = _leader(cluster, settings)
        killed_at: list[float] = []

        async def publish() -> tuple[int, int, float]:
            acknowledged = asyncio.Event()

            def on_progress(done: int) -> None:
                if done >= KILL_AFTER:
                    acknowledged.set()

            async def kill_when_due() -> None:
                await acknowledged.wait()
                pid = victim.status().pid
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
                killed_at.append(time.monotonic())

            killer = asyncio.create_task(kill_when_due())
            async with Publisher(settings) as publisher:
                summary = await publisher.publish_many(DATASET, records, on_progress=on_progress)
            await killer
            return summary.accepted, summary.rejected, time.monotonic()

        started = time.monotonic()
        accepted, rejected, ended = asyncio.run(publish())
        assert killed_at, "the leader was never killed"
        assert ended > killed_at[0], "the publish ended before the kill"
        assert not victim.status().running
        landed = asyncio.run(_ce_ids(settings, DATASET))
        assert (accepted, rejected) == (RECORDS, 0)
        assert set(landed) == expected, (
            f"{len(expected - set(landed))} accepted records lost, "
            f"{len(set(landed) - expected)} unexpected records"
        )
        duplicated = {ident: n for ident, n in landed.items() if n > 1}
        assert not duplicated, f"{len(duplicated)} records landed more than once"

        # The killed node comes back and catches up with the two others.
        restarted = time.monotonic()
        victim.start()
        deadline = time.monotonic() + ISR_LIMIT_S
        while True:
            partitions = asyncio.run(_partitions(settings, DATASET))
            if all(len(p["isr"]) == NODES for p in partitions):  # type: ignore[arg-type]
                break
            assert time.monotonic() < deadline, f"not back in sync: {partitions}"
            time.sleep(0.5)
        back_in_sync = time.monotonic() - restarted
        assert asyncio.run(_ce_ids(settings, DATASET)) == landed

    figures("records", RECORDS)
    figures("killed_node", victim.node.node_id if victim.node else 0)
    figures("publish_s", round(ended - started, 1))
    figures("killed_after_s", round(killed_at[0] - started, 1))
    figures("back_in_sync_s", round(back_in_sync, 1))


def test_a_worker_rides_out_a_killed_leader_and_its_return(tmp_path: Path, figures: Note) -> None:
    """The decision worker on the cluster while the leader of partition 0 of a source
    topic is SIGKILLed mid-scenario and started again 10 s later: no decision is lost
    or changed; duplicates (at-least-once) are counted."""
    partitions = 4
    scenario = build_scenario(PROVINCE, TEST_KEY, partitions, block_days=10)
    expected = decide_in_memory(scenario, partitions, load_policy())
    with _own_cluster(tmp_path) as (cluster, settings):
        victim = _leader(cluster, settings)
        worker = WorkerProcess(settings, tmp_path / "worker", tmp_path / "worker.log")
        outage: dict[str, float] = {}

        async def kill_and_restart() -> None:
            await asyncio.sleep(KILL_AT_S)
            pid = victim.status().pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            outage["killed"] = time.monotonic()
            await asyncio.sleep(DOWN_S)
            await asyncio.to_thread(victim.start)
            outage["back"] = time.monotonic()

        async def run() -> float:
            started = time.monotonic()
            chaos = asyncio.create_task(kill_and_restart())
            report = await drive(settings, scenario, worker, [])
            await chaos
            assert report.worker_starts == 1, "the worker never had to be restarted"
            return started + report.seconds

        ended = asyncio.run(run())
        assert outage["back"] < ended, "the scenario ended before the broker came back"
        events = asyncio.run(read_events(settings, DERIVED, idle=3))
    raw = [(e.envelope.id, e.envelope.type, e.record) for e in events]
    decided = facts_of(raw)
    missing = sorted(set(expected) - set(decided))
    assert not missing, f"{len(missing)} decisions lost, e.g. {missing[:3]}"
    assert decided == expected
    figures("worker_events", scenario.events)
    figures("worker_decisions", len(decided))
    figures("worker_duplicates", len(raw) - len(decided))
    figures("worker_broker_down_s", round(outage["back"] - outage["killed"], 1))
