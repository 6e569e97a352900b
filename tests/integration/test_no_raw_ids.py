"""The raw resident ID number appears in no byte of any topic."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from databus.catalog import CATALOG
from databus.settings import Settings
from tests.factories import make_citizen_id, sample_input
from tests.integration.bus import read_raw, run_cli

pytestmark = pytest.mark.integration


async def test_no_topic_contains_a_raw_id(bus_settings: Settings, tmp_path: Path) -> None:
    ids = [make_citizen_id("370181", dt.date(1941, 7, 9), n) for n in range(40, 40 + 16)]
    for position, dataset in enumerate(CATALOG.sources()):
        good, bad = ids[2 * position], ids[2 * position + 1]
        broken = bad[:17] + ("1" if bad[17] == "0" else "0")
        lines = [
            orjson.dumps(sample_input(dataset.name, good)),
            orjson.dumps(sample_input(dataset.name, good.lower(), occurred_at="yesterday")),
            orjson.dumps(sample_input(dataset.name, broken)),
            orjson.dumps(sample_input(dataset.name, bad) | {"surprise": bad}),
            b'{"citizen_id": "' + bad.encode() + b'"',
        ]
        path = tmp_path / f"{dataset.name}.ndjson"
        path.write_bytes(b"\n".join(lines) + b"\n")
        result = run_cli(bus_settings, "publish", dataset.name, str(path))
        assert "accepted 1, rejected 4" in result.stdout, result.stdout + result.stderr
        for shown in (result.stdout, result.stderr):
            assert not any(i in shown or broken in shown for i in ids), shown

    admin = AIOKafkaAdminClient(bootstrap_servers=bus_settings.bootstrap_servers)
    await admin.start()
    try:
        topics = await admin.list_topics()
    finally:
        await admin.close()
    chunks = await read_raw(bus_settings, topics)
    assert len(chunks) > 16 * 2
    everything = b"\x00".join(chunks)
    for citizen_id in ids:
        for form in {citizen_id, citizen_id.lower(), citizen_id[:17]}:
            assert form.encode() not in everything, f"an ID number reached the bus ({form[:6]}…)"
