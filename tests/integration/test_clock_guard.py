"""The clock is guarded, audited, visible, and can be set back.

Before: ``databus clock tick --date 2099-01-01`` suspended every tracked pensioner and
raised allowance tiers, without a question, a trace or a way back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from databus.client.publisher import Publisher
from databus.ops.processes import free_ports
from databus.records import PensionStatus
from databus.records.audit import OperationAudit
from databus.rules import load_policy
from databus.settings import Settings
from databus.streams.clock import local_today
from databus.wire import Message
from tests.factories import make_citizen_id, sample_input
from tests.integration.bus import read_events, run_cli
from tests.integration.workers import fresh_bus, start_worker, stop_worker, wait_caught_up

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TODAY = local_today(load_policy().time_zone)
PENSIONER = make_citizen_id("370102", dt.date(1950, 5, 1), 88)
STATUS = "derived.pension_status.v1"
INPUTS = ["hrss.pensioner.v1", "system.clock.v1"]


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Path]]:
    tmp = tmp_path_factory.mktemp("clock-guard")
    with fresh_bus(tmp, Settings().cache_dir) as settings:
        yield settings, tmp


def _audit(settings: Settings) -> list[OperationAudit]:
    events = asyncio.run(read_events(settings, ["audit.operations.v1"], idle=1))
    return [e.record for e in events if isinstance(e.record, OperationAudit)]


def _ticks(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    kinds: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "databus_worker_ticks_total":
                kinds[sample.labels["kind"]] = sample.value
    return kinds


def _statuses(settings: Settings, person_ref: str) -> list[tuple[str, str, dt.date]]:
    events = asyncio.run(read_events(settings, [STATUS], idle=2))
    return [
        (e.record.decision, e.record.reason, e.record.as_of)
        for e in events
        if isinstance(e.record, PensionStatus) and e.record.person_ref == person_ref
    ]


def test_a_tick_after_tomorrow_is_refused_and_the_refusal_audited(
    bus: tuple[Settings, Path],
) -> None:
    settings, _ = bus
    first = run_cli(settings, "clock", "tick")
    assert first.returncode == 0, first.stderr
    typo = run_cli(settings, "clock", "tick", "--date", "2099-01-01")
    assert typo.returncode == 2
    assert "2099-01-01 is after tomorrow" in typo.stderr
    assert typo.stderr.count("\n") == 1, typo.stderr  # one line, no traceback
    backwards = run_cli(settings, "clock", "tick", "--date", str(TODAY - dt.timedelta(days=3)))
    assert backwards.returncode == 2
    assert "ticks never go back" in backwards.stderr
    unexplained = run_cli(settings, "clock", "tick", "--date", "2099-01-01", "--allow-future")
    assert unexplained.returncode == 2
    assert "need --reason" in unexplained.stderr
    records = _audit(settings)
    assert [(r.action, r.outcome) for r in records] == [
        ("clock.tick", "done"),
        ("clock.tick", "refused"),
        ("clock.tick", "refused"),
    ]
    refused = records[1]
    assert refused.details["as_of"] == "2099-01-01"
    assert refused.principal == "ANONYMOUS"  # plaintext: the broker names nobody
    assert refused.user
    assert refused.host


def test_a_forced_future_tick_is_counted_and_a_reset_undoes_it(
    bus: tuple[Settings, Path],
) -> None:
    settings, tmp = bus
    port = free_ports(1)[0]
    worker = start_worker(settings, tmp / "worker", "--web-port", str(port))
    try:

        async def publish() -> Any:
            record = sample_input(
                "hrss.pensioner.v1", PENSIONER, occurred_at="2026-01-05T09:00:00+08:00",
                benefit_start=str(TODAY - dt.timedelta(days=200)),
            )  # fmt: skip
            async with Publisher(settings) as publisher:
                sent = await publisher.publish("hrss.pensioner.v1", record)
            assert isinstance(sent, Message)
            return sent.key.decode() if sent.key else ""

        person_ref = asyncio.run(publish())
        today = run_cli(settings, "clock", "tick", "--date", str(TODAY))
        assert today.returncode == 0, today.stderr
        asyncio.run(wait_caught_up(settings, INPUTS, limit_s=120))
        forced = run_cli(
            settings, "clock", "tick", "--date", "2099-01-01", "--allow-future", "--allow-gap",
            "--reason", "testing the guard",
        )  # fmt: skip
        assert forced.returncode == 0, forced.stderr
        asyncio.run(wait_caught_up(settings, INPUTS, limit_s=120))
        assert _statuses(settings, person_ref) == [
            ("suspended", "no_evidence", dt.date(2099, 1, 1))
        ]
        reset = run_cli(
            settings, "clock", "reset", "--to", str(TODAY), "--reason", "the 2099 tick was a typo"
        )
        assert reset.returncode == 0, reset.stderr
        asyncio.run(wait_caught_up(settings, INPUTS, limit_s=120))
        kinds = _ticks(port)
        assert kinds.get("future") == settings.partitions
        assert kinds.get("reset") == settings.partitions
    finally:
        stop_worker(worker)
    assert _statuses(settings, person_ref) == [
        ("suspended", "no_evidence", dt.date(2099, 1, 1)),
        ("resumed", "retracted", TODAY),
    ]
    actions = [(r.action, r.outcome, r.reason) for r in _audit(settings)][-2:]
    assert actions == [
        ("clock.tick", "done", "testing the guard"),
        ("clock.reset", "done", "the 2099 tick was a typo"),
    ]
