"""A real Prometheus scrapes a worker during a short simulation; the decision counters it
reports through its HTTP API equal the decisions on the derived topics."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from databus.catalog import CATALOG
from databus.client.publisher import Publisher
from databus.ops.broker import free_ports
from databus.settings import Settings
from databus.sim import Province, SimulationConfig, publish_province
from tests.integration.bus import read_events
from tests.integration.workers import fresh_bus, start_worker, stop_worker, wait_caught_up

pytestmark = pytest.mark.integration

DERIVED = [d.name for d in CATALOG if d.name.startswith("derived.")]
INPUTS = [d.topic for d in CATALOG.sources()] + ["system.clock.v1"]
CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: databus-worker
    static_configs:
      - targets: ["127.0.0.1:{worker_port}"]
"""


@pytest.fixture
def bus(tmp_path: Path, broker_settings: Settings) -> Iterator[Settings]:
    with fresh_bus(tmp_path, broker_settings.cache_dir) as settings:
        yield settings


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A Prometheus server (Debian's package, installed by scripts/ensure-tools) that will
    scrape a worker on the port it yields."""
    binary = shutil.which("prometheus")
    assert binary, "the prometheus binary is missing: run scripts/ensure-tools"
    worker_port, api_port = free_ports(2)
    config = tmp_path / "prometheus.yml"
    config.write_text(CONFIG.format(worker_port=worker_port))
    with (tmp_path / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [
                binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{api_port}",
            ],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{api_port}", worker_port
    finally:
        process.terminate()
        process.wait(timeout=30)


def _query(api: str, promql: str) -> list[dict[str, Any]]:
    url = f"{api}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - local test server
        body = json.load(response)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _decisions_in_prometheus(api: str) -> dict[tuple[str, str], int]:
    rows = _query(api, "sum by (dataset, kind) (databus_worker_decisions_total)")
    return {(r["metric"]["dataset"], r["metric"]["kind"]): int(float(r["value"][1])) for r in rows}


def test_prometheus_scrapes_the_worker_and_reports_its_decisions(
    bus: Settings, prometheus: tuple[str, int], tmp_path: Path
) -> None:
    api, worker_port = prometheus
    (tmp_path / "worker").mkdir()
    worker = start_worker(bus, tmp_path / "worker" / "data", "--web-port", str(worker_port))
    try:
        province = Province(SimulationConfig(seed=5, residents=800, days=90))

        async def publish() -> None:
            async with Publisher(bus) as publisher:
                await publish_province(province, publisher, ticks=True)

        asyncio.run(publish())
        asyncio.run(wait_caught_up(bus, INPUTS))
        on_bus = Counter(
            (event.envelope.type, getattr(event.record, "decision", None) or event.record.kind)
            for event in asyncio.run(read_events(bus, DERIVED))
        )
        assert on_bus, "the simulation should lead to decisions"
        deadline = time.monotonic() + 60
        while (seen := _decisions_in_prometheus(api)) != dict(on_bus):
            assert time.monotonic() < deadline, f"Prometheus has {seen}, the topics {on_bus}"
            time.sleep(1)
        [up] = _query(api, 'up{job="databus-worker"}')
        assert up["value"][1] == "1"
        [events] = _query(api, "sum(databus_worker_events_total)")
        assert int(float(events["value"][1])) >= sum(province.summary().records.values())
    finally:
        stop_worker(worker)
