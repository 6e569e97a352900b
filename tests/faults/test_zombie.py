"""A zombie worker: paused past its session timeout while a transaction of it is open,
replaced, then woken up.

Worker A decides the first quarter of a scenario step by step; then the rest but its
last steps is published without waiting, and while A works through that backlog it is
SIGSTOPped with a transaction open (records written, no commit). Worker B starts; once
the group has given up on A (its session timeout), B takes every partition — opening
its transactional writers fences A's and aborts A's open transaction — and decides the
backlog. Then A gets SIGCONT: it goes on with what it had in hand, its writers are
refused by the broker (fenced), it rejoins the group, and the two share the partitions
for the last steps. Read ``read_committed``, the decisions are exactly those of the
worker's processor run in memory over the same scenario, each once: nothing A wrote
after its pause is visible. (The backlog's steps are in time order on the topics, so
the worker's time order decides them as the lock-step would.)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from databus.rules import load_policy
from databus.runtime.producers import producer_options
from databus.settings import Settings
from databus.sim import SimulationConfig
from databus.streams.names import changelog_topic
from tests.faults.chaos import (
    SESSION_TIMEOUT_S,
    WorkerProcess,
    publish,
    transaction_open,
    wait_until_committed,
)
from tests.faults.conftest import Note
from tests.faults.scenario import DERIVED, Scenario, build_scenario, decide_in_memory, facts_of
from tests.integration.bus import read_events, read_records
from tests.integration.workers import TEST_KEY, fresh_bus

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

PARTITIONS = 4  # what fresh_bus creates
PROVINCE = SimulationConfig(seed=11, residents=12_000, days=40, start=dt.date(2025, 1, 1))
#: Steps published after A wakes (one at a time, both workers running).
AFTER_WAKING = 4
#: A transaction still open this long after the pause is not one that was committing.
SETTLE_S = 0.3
#: Pauses tried (each released at once if no transaction of A's was open then).
ATTEMPTS = 50


async def _pause_in_transaction(
    zombie: WorkerProcess, consumer: AIOKafkaConsumer, stable: AIOKafkaConsumer
) -> None:
    """SIGSTOP ``zombie`` at a moment one of its transactions is open, and stays open
    while it is paused (not one that was being committed)."""
    changelog = [TopicPartition(changelog_topic(), p) for p in range(PARTITIONS)]
    for _ in range(ATTEMPTS):
        await transaction_open(consumer, stable, changelog)
        zombie.pause()
        await asyncio.sleep(SETTLE_S)
        if await transaction_open(consumer, stable, changelog, wait_s=0.0):
            return
        zombie.resume()
        await asyncio.sleep(0.01)
    raise AssertionError(f"no transaction of the worker was open in {ATTEMPTS} pauses")


async def _run(settings: Settings, scenario: Scenario, tmp_path: Path) -> dict[str, float]:
    zombie = WorkerProcess(settings, tmp_path / "a", tmp_path / "a.log")
    successor = WorkerProcess(settings, tmp_path / "b", tmp_path / "b.log")
    producer = AIOKafkaProducer(**producer_options(settings))
    consumer = AIOKafkaConsumer(**settings.kafka_client_options(), group_id=None)
    probe = AIOKafkaConsumer(**settings.kafka_client_options(), group_id=None)
    stable = AIOKafkaConsumer(
        **settings.kafka_client_options(), group_id=None, isolation_level="read_committed"
    )
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    clients = (producer, consumer, probe, stable)
    await asyncio.gather(*(client.start() for client in clients), admin.start())
    steps = scenario.steps
    half, tail = len(steps) // 4, len(steps) - AFTER_WAKING
    figures: dict[str, float] = {"steps": len(steps), "backlog_events": 0}
    zombie.start()
    try:
        for step in steps[:half]:
            ends = await publish(producer, consumer, step, settings.partitions)
            await wait_until_committed(admin, ends, zombie)
        # A backlog that keeps A busy (its steps are in time order on the topics: the
        # worker's time order decides them as the lock-step would).
        # A is paused while the backlog is being published and decided.
        pausing = asyncio.ensure_future(_pause_in_transaction(zombie, probe, stable))
        backlog: dict[TopicPartition, int] = {}
        for step in steps[half:tail]:
            backlog |= await publish(producer, consumer, step, settings.partitions)
            figures["backlog_events"] += len(step.messages)
        await pausing
        paused = time.monotonic()
        successor.start()
        await wait_until_committed(admin, backlog, successor)
        figures["taken_over_s"] = round(time.monotonic() - paused, 1)
        zombie.resume()
        for step in steps[tail:]:
            ends = await publish(producer, consumer, step, settings.partitions)
            await wait_until_committed(admin, ends, successor)
        assert zombie.alive(), f"the woken worker died:\n{zombie.log_tail()}"
    finally:
        await asyncio.gather(*(client.stop() for client in clients), admin.close())
        await asyncio.to_thread(zombie.stop)
        await asyncio.to_thread(successor.stop)
    figures["zombie_fenced_batches"] = zombie.log_path.read_text().count("was fenced")
    return figures


def test_a_woken_zombie_writes_nothing_visible(tmp_path: Path, figures: Note) -> None:
    scenario = build_scenario(PROVINCE, TEST_KEY.encode(), PARTITIONS, block_days=10)
    expected = decide_in_memory(scenario, PARTITIONS, load_policy())
    with fresh_bus(tmp_path, Settings().cache_dir) as settings:
        measured = asyncio.run(_run(settings, scenario, tmp_path))
        events = asyncio.run(read_events(settings, DERIVED, idle=3))
        written = [*DERIVED, changelog_topic()]
        everything = asyncio.run(read_records(settings, written))
        committed = asyncio.run(read_records(settings, written, isolation_level="read_committed"))
    raw = [(e.envelope.id, e.envelope.type, e.record) for e in events]
    decided = facts_of(raw)
    for name, value in measured.items():
        figures(name, value)
    figures("session_timeout_s", SESSION_TIMEOUT_S)
    figures("decisions", len(decided))
    figures("aborted_records", len(everything) - len(committed))
    assert decided == expected
    assert len(raw) == len(decided), f"{len(raw) - len(decided)} decisions delivered twice"
    # The transaction A had open when it was paused was aborted when B fenced it, and
    # A, woken, found its writer fenced instead of committing anything.
    assert len(everything) > len(committed)
    assert measured["zombie_fenced_batches"] > 0
