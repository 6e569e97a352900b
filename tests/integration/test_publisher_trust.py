"""What a publisher may claim: with SASL its source is its user; the public demo key and
future days only against a demo broker (one formatted with a demo cluster id)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from databus.catalog import CATALOG
from databus.client.publisher import Publisher
from databus.errors import ConfigurationError
from databus.identity import pseudonym_key_id
from databus.ops.broker import LocalBroker, free_ports
from databus.ops.topics import apply_topics
from databus.settings import DEMO_PSEUDONYM_KEY, Settings
from databus.wire import Message
from tests.factories import make_citizen_id, sample_input
from tests.integration.bus import read_records
from tests.integration.secure import SecureBus, run_databus

pytestmark = pytest.mark.integration

VISITS = "health.hospital_visit.v1"


def _visits(tmp_path: Path, name: str, count: int, **fields: str) -> Path:
    path = tmp_path / name
    ids = [make_citizen_id("370112", dt.date(1950, 4, 4), 300 + n) for n in range(count)]
    path.write_bytes(b"".join(orjson.dumps(sample_input(VISITS, i, **fields)) + b"\n" for i in ids))
    return path


def test_with_sasl_publishing_as_another_agency_is_refused(
    secure: SecureBus, tmp_path: Path
) -> None:
    """health may write its own topics; it may not say the records are police's."""
    path = _visits(tmp_path, "as-police.ndjson", 2)
    result = run_databus(secure, "health", "publish", VISITS, str(path), "--source", "police")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == (
        "error: cannot publish as source 'police': with SASL a publisher's source "
        "(ce_source) is the user it logs in as, health"
    )
    assert "accepted" not in result.stdout


async def test_with_sasl_the_sdk_sources_records_as_its_user(secure: SecureBus) -> None:
    with pytest.raises(ConfigurationError, match="cannot publish as source 'police'"):
        Publisher(secure.settings("health"), source="police")
    record = sample_input(VISITS, make_citizen_id("370112", dt.date(1951, 5, 5), 17))
    async with Publisher(secure.settings("health")) as publisher:
        sent = await publisher.publish(VISITS, record)
    assert isinstance(sent, Message)
    assert dict(sent.headers)["ce_source"] == b"health"


@pytest.fixture(scope="module")
def demo_bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A demo broker of its own (demo cluster id), with the catalog's topics."""
    port, controller = free_ports(2)
    state = tmp_path_factory.mktemp("demo-broker")
    broker = LocalBroker(state, Settings().cache_dir, port, controller, demo=True)
    bootstrap = broker.start()
    try:
        settings = Settings(bootstrap_servers=bootstrap, pseudonym_key=None, demo=True)
        asyncio.run(apply_topics(settings))
        yield settings
    finally:
        broker.stop()


def test_the_demo_key_works_against_a_demo_broker(demo_bus: Settings, tmp_path: Path) -> None:
    path = _visits(tmp_path, "demo.ndjson", 3)
    env = {k: v for k, v in os.environ.items() if k != "DATABUS_PSEUDONYM_KEY"}
    env |= {"DATABUS_BOOTSTRAP_SERVERS": demo_bus.bootstrap_servers, "DATABUS_DEMO": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "databus", "publish", VISITS, str(path)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{VISITS}: accepted 3, rejected 0" in result.stdout
    messages = asyncio.run(read_records(demo_bus, [CATALOG.get(VISITS).topic]))
    demo_key_id = pseudonym_key_id(DEMO_PSEUDONYM_KEY.encode())
    assert len(messages) >= 3
    assert {dict(m.headers)["ce_keyid"] for m in messages} == {demo_key_id.encode()}


async def test_future_days_are_accepted_by_a_demo_broker(demo_bus: Settings) -> None:
    """Simulations publish days ahead of the clock; only a demo broker lets them."""
    now = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
    ahead = sample_input(
        VISITS,
        make_citizen_id("370112", dt.date(1952, 6, 6), 9),
        occurred_at="2025-07-01T08:00:00Z",
    )
    async with Publisher(demo_bus, clock=lambda: now) as publisher:
        assert publisher.demo_broker
        sent = await publisher.publish(VISITS, ahead)
    assert isinstance(sent, Message), sent
