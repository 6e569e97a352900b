"""`databus demo` runs on a demo broker of its own, and keeps its files private."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from databus.ops.broker import LocalBroker, free_ports
from databus.ops.private_files import loose_modes
from databus.sandbox import on_demo_broker
from databus.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _demo(state_dir: Path, cache_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABUS_")}
    env |= {"DATABUS_STATE_DIR": str(state_dir), "DATABUS_CACHE_DIR": str(cache_dir)}
    return subprocess.run(
        [sys.executable, "-m", "databus", "demo", *args],
        env=env, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip


def test_the_demo_formats_its_broker_as_a_demo_broker(
    tmp_path: Path, broker_settings: Settings
) -> None:
    (web_port,) = free_ports(1)
    run = _demo(
        tmp_path, broker_settings.cache_dir, "--residents", "40", "--days", "3",
        "--web-port", str(web_port), "--keep-running", "--json",
    )  # fmt: skip
    try:
        assert run.returncode == 0, run.stderr[-3000:]
        bootstrap = orjson.loads(run.stdout)["bootstrap"]

        assert asyncio.run(on_demo_broker(Settings(bootstrap_servers=bootstrap)))
        assert LocalBroker(tmp_path / "demo", broker_settings.cache_dir).status().demo
        assert loose_modes(tmp_path / "demo") == []  # broker, worker tables, logs
    finally:
        stopped = _demo(tmp_path, broker_settings.cache_dir, "--stop")
    assert stopped.stdout.strip() == "demo stopped"
