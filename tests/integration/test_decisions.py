"""End to end: publish a scenario, run a real worker, tick the clock, read the decisions.

Each test runs its own broker so that no other test's events or ticks reach the worker.
The expected decisions are worked out by hand from DOMAIN.md, not by calling the rules.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from databus import records as r
from databus.client.publisher import Publisher
from databus.identity import Pseudonymizer
from databus.settings import Settings
from databus.streams.clock import publish_ticks
from tests.factories import make_citizen_id, sample_input
from tests.integration.bus import read_events, run_cli
from tests.integration.workers import (
    TEST_KEY,
    fresh_bus,
    start_worker,
    stop_worker,
    wait_caught_up,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

A = make_citizen_id("370102", dt.date(1950, 5, 1), 11)  # pensioner, seen in hospital
B = make_citizen_id("370103", dt.date(1955, 7, 2), 12)  # pensioner, silent, then face scan
C = make_citizen_id("370104", dt.date(1940, 1, 3), 13)  # pensioner who dies; card used after
D = make_citizen_id("370105", dt.date(1946, 3, 15), 14)  # resident, turns 80 on 2026-03-15
DERIVED = ["derived.pension_status.v1", "derived.fraud_alert.v1", "derived.elderly_allowance.v1"]
INPUTS = [
    "hrss.pensioner.v1",
    "hrss.face_authentication.v1",
    "health.hospital_visit.v1",
    "health.death_certificate.v1",
    "transport.transit_tap.v1",
    "police.household.v1",
    "system.clock.v1",
]


def ref(citizen_id: str) -> str:
    return Pseudonymizer(TEST_KEY.encode()).person_ref(citizen_id)


def _pensioner(citizen_id: str, benefit_start: str, account: str) -> dict[str, Any]:
    return sample_input(
        "hrss.pensioner.v1",
        citizen_id,
        occurred_at="2026-01-05T09:00:00+08:00",
        pensioner_account=account,
        benefit_start=benefit_start,
    )


def _at(dataset: str, citizen_id: str, when: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return dataset, sample_input(dataset, citizen_id, occurred_at=when, **fields)


PHASE_1: list[tuple[str, dict[str, Any]]] = [
    ("hrss.pensioner.v1", _pensioner(A, "2025-06-01", "PA-A")),
    ("hrss.pensioner.v1", _pensioner(B, "2025-04-10", "PA-B")),
    ("hrss.pensioner.v1", _pensioner(C, "2025-09-01", "PA-C")),
    _at("police.household.v1", D, "2026-01-02T10:00:00+08:00"),
    _at("health.hospital_visit.v1", A, "2026-03-02T10:15:00+08:00"),
    _at("health.death_certificate.v1", C, "2026-03-21T16:00:00+08:00",
        date_of_death="2026-03-20"),
    _at("transport.transit_tap.v1", C, "2026-03-25T08:00:00+08:00"),
]  # fmt: skip
TICKS = [dt.date(2026, 3, 11), dt.date(2026, 4, 1), dt.date(2026, 4, 11)]
PHASE_3 = [_at("hrss.face_authentication.v1", B, "2026-04-20T09:00:00+08:00")]

EXPECTED = {
    (ref(A), "confirmed", "evidence", "2026-03-02", "2027-03-02"),
    (ref(B), "reminder", "no_evidence", "2026-03-11", "2026-04-10"),
    (ref(B), "suspended", "no_evidence", "2026-04-11", "2026-04-10"),
    (ref(B), "resumed", "evidence", "2026-04-20", "2027-04-20"),
    (ref(C), "suspended", "deceased", None, None),
    (ref(C), "post_mortem_activity", "2026-03-20"),
    (ref(D), "granted", "age", "80-89", 10000, "2026-04"),
}


def summarise(events: list[Any]) -> set[tuple[Any, ...]]:
    """The decision facts a test compares (as_of of a deceased suspension is left open)."""
    facts: set[tuple[Any, ...]] = set()
    for event in events:
        r = event.record.model_dump(mode="json")
        if event.envelope.type == "derived.pension_status.v1":
            if r["reason"] == "deceased":
                facts.add((r["person_ref"], r["decision"], r["reason"], None, None))
            else:
                facts.add(
                    (r["person_ref"], r["decision"], r["reason"], r["as_of"], r["qualified_until"])
                )
        elif event.envelope.type == "derived.fraud_alert.v1":
            facts.add((r["person_ref"], r["kind"], r["date_of_death"]))
        else:
            facts.add((r["person_ref"], r["decision"], r["reason"], r["tier"],
                       r["monthly_amount_cents"], r["effective_month"]))  # fmt: skip
    return facts


async def publish(settings: Settings, records: list[tuple[str, dict[str, Any]]]) -> None:
    async with Publisher(settings) as publisher:
        for dataset, record in records:
            outcome = await publisher.publish(dataset, record)
            assert not hasattr(outcome, "reasons"), outcome


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[Settings]:
    with fresh_bus(tmp_path, Settings().cache_dir) as settings:
        yield settings


def run_scenario(
    settings: Settings,
    data_dir: Path,
    *,
    crash_between_phases: bool,
    worker_args: tuple[str, ...] = (),
) -> None:
    """Publish the scenario in three phases with a worker running; optionally kill the
    worker with SIGKILL after each phase and delete its local state, so that the next
    worker must recover the table from the changelog."""
    worker = start_worker(settings, data_dir, *worker_args)
    try:
        phases = [
            lambda: _publish_with_poison(settings),
            lambda: _tick_all(settings),
            lambda: publish(settings, PHASE_3),
        ]
        for number, phase in enumerate(phases):
            asyncio.run(phase())
            asyncio.run(wait_caught_up(settings, INPUTS))
            if crash_between_phases and number < len(phases) - 1:
                stop_worker(worker, kill=True)
                _wipe(data_dir)
                worker = start_worker(settings, data_dir, *worker_args)
    finally:
        stop_worker(worker)


POISON_TOPIC = "health.hospital_visit.v1"


async def _publish_with_poison(settings: Settings) -> None:
    """Phase 1, with an undecodable message written straight into a source topic."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(POISON_TOPIC, b"not an event", key=ref(A).encode())
    finally:
        await producer.stop()
    await publish(settings, PHASE_1)


async def _tick_all(settings: Settings) -> None:
    for day in TICKS:
        await publish_ticks(settings, day)


def _wipe(directory: Path) -> None:
    import shutil  # noqa: PLC0415

    shutil.rmtree(directory, ignore_errors=True)


def test_scenario_yields_the_expected_decisions(bus: Settings, tmp_path: Path) -> None:
    run_scenario(bus, tmp_path / "worker", crash_between_phases=False)
    events = asyncio.run(read_events(bus, DERIVED))
    assert summarise(events) == EXPECTED
    ids = [e.envelope.id for e in events]
    assert len(ids) == len(set(ids)), "an uninterrupted run emits each decision once"

    dead = [e.record for e in asyncio.run(read_events(bus, ["dlq.rejected.v1"]))]
    assert len(dead) == 1
    assert isinstance(dead[0], r.Rejected)
    assert dead[0].source is not None
    assert dead[0].source.startswith(f"{POISON_TOPIC}[")
    assert "missing header ce_id" in dead[0].reasons[0].message

    shown = run_cli(bus, "explain", ref(B))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"person {ref(B)}")
    assert '"tracked"' in lines[1] or "tracked" in lines[1]
    assert [line.split()[3] for line in lines if line.startswith("- ")] == [
        "reminder", "suspended", "resumed",
    ]  # fmt: skip
    assert any(line.strip().startswith("because hrss.face_authentication.v1") for line in lines)


@pytest.mark.parametrize("guarantee", ["exactly-once", "at-least-once"])
def test_crashes_and_lost_local_state_change_no_decision(
    bus: Settings, tmp_path: Path, guarantee: str
) -> None:
    """Both guarantees recover from the changelog after kill -9 and a deleted data dir."""
    run_scenario(
        bus,
        tmp_path / "worker",
        crash_between_phases=True,
        worker_args=("--guarantee", guarantee),
    )
    events = asyncio.run(read_events(bus, DERIVED))
    unique = {e.envelope.id: e for e in events}
    assert summarise(list(unique.values())) == EXPECTED
    if guarantee == "exactly-once":
        assert len(events) == len(unique), "exactly-once delivers each decision once"


def test_the_leader_publishes_todays_tick(bus: Settings, tmp_path: Path) -> None:
    from databus.records import ClockTick  # noqa: PLC0415
    from databus.streams.clock import local_today  # noqa: PLC0415

    worker = start_worker(bus, tmp_path / "worker", "--daily-ticks")
    try:
        deadline = time.monotonic() + 90
        ticks: list[ClockTick] = []
        while not ticks and time.monotonic() < deadline:
            events = asyncio.run(read_events(bus, ["system.clock.v1"], idle=3))
            ticks = [e.record for e in events if isinstance(e.record, ClockTick)]
    finally:
        stop_worker(worker)
    assert {tick.as_of for tick in ticks} == {local_today("Asia/Shanghai")}
    assert len(ticks) == bus.partitions
