"""`databus demo`, the README's main job, end to end, at its default size.

At 1,500 residents the worker always decided what the in-order replay decides; at the
default 20,000 one run in three reported 1,191 reminders for the replay's 1,192 (a
day's evidence overtaking a tick not fetched yet, streams/ordering.py). So the test
runs the demo as `make demo` does and compares every decision kind with the replay."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from databus.catalog import CATALOG, DLQ
from databus.ops.broker import LocalBroker, free_ports
from databus.settings import Settings
from databus.sim import Province, SimulationConfig
from tests.integration.bus import read_events
from tests.replay import replay

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

DERIVED = [d.name for d in CATALOG if d.name.startswith("derived.")]
#: `databus demo`'s defaults.
SEED, RESIDENTS, DAYS = 7, 20_000, 400


def _demo(state_dir: Path, cache_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABUS_")}
    env |= {"DATABUS_STATE_DIR": str(state_dir), "DATABUS_CACHE_DIR": str(cache_dir)}
    return subprocess.run(
        [sys.executable, "-m", "databus", "demo", *args],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def _kind(record: Any) -> str:
    return str(getattr(record, "decision", None) or record.kind)


def test_demo_summary_matches_what_is_on_the_bus(tmp_path: Path, broker_settings: Settings) -> None:
    kafka_cache_dir = broker_settings.cache_dir
    (web_port,) = free_ports(1)
    run = _demo(
        tmp_path, kafka_cache_dir, "--residents", str(RESIDENTS), "--days", str(DAYS),
        "--seed", str(SEED),
        "--web-port", str(web_port), "--keep-running", "--json",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    summary = orjson.loads(run.stdout)
    try:
        settings = Settings(bootstrap_servers=summary["bootstrap"], demo=True)
        derived = asyncio.run(read_events(settings, DERIVED))
        on_bus: dict[str, Counter[str]] = {}
        for event in derived:
            on_bus.setdefault(event.envelope.type, Counter())[_kind(event.record)] += 1
        assert {d: dict(c) for d, c in on_bus.items()} == summary["decisions"]
        # What the pure rules decide when they see the province strictly in order: the
        # worker reads topics at different speeds and must still decide the same.
        province = Province(SimulationConfig(seed=SEED, residents=RESIDENTS, days=DAYS))
        decided, _, _ = replay(province)
        in_order: dict[str, Counter[str]] = {}
        for (dataset, kind, _), count in decided.items():
            in_order.setdefault(dataset, Counter())[kind] += count
        assert on_bus == in_order, {d: dict(c) for d, c in in_order.items()}
        assert sum(summary["decisions"]["derived.pension_status.v1"].values()) > 0
        sources = asyncio.run(read_events(settings, [d.name for d in CATALOG.sources()]))
        assert len(sources) == summary["published"] > 0
        assert summary["events_in"] == summary["published"] + summary["ticks"]
        dead = asyncio.run(read_events(settings, [DLQ.name], idle=1.0))
        assert len(dead) == summary["rejected_by_publisher"] + summary["dead_letters"]
        assert summary["events_per_second"] > 0
    finally:
        stopped = _demo(tmp_path, kafka_cache_dir, "--stop")
    assert stopped.stdout.strip() == "demo stopped"
    assert not LocalBroker(tmp_path / "demo", kafka_cache_dir).is_running()
