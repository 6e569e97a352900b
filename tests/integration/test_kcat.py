"""An independent client (Debian's kcat, librdkafka) reads our messages."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import orjson
import pytest

from databus.catalog import CATALOG
from databus.client.publisher import Publisher
from databus.identity import Pseudonymizer, pseudonym_key_id
from databus.settings import Settings
from databus.wire import Message
from tests.factories import make_citizen_id, sample_input

pytestmark = pytest.mark.integration

DATASET = "transport.transit_tap.v1"


def _kcat() -> str:
    path = shutil.which("kcat")
    # CI installs kcat (scripts/ensure-tools); a missing kcat is a failure, not a skip.
    assert path, "kcat is not installed: run scripts/ensure-tools"
    return path


async def test_kcat_reads_headers_key_and_value(bus_settings: Settings) -> None:
    citizen_id = make_citizen_id("370105", sequence=321)
    record = sample_input(DATASET, citizen_id, card_id="TC-KCAT-1")
    async with Publisher(bus_settings) as publisher:
        message = await publisher.publish(DATASET, record)
    assert isinstance(message, Message)
    person_ref = Pseudonymizer(bus_settings.pseudonym_key_bytes()).person_ref(citizen_id)

    result = await asyncio.to_thread(
        subprocess.run,
        [_kcat(), "-b", bus_settings.bootstrap_servers, "-C", "-t", DATASET,
         "-o", "beginning", "-e", "-q", "-J"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    seen = [orjson.loads(line) for line in result.stdout.splitlines() if line.strip()]
    ours = [m for m in seen if m.get("key") == person_ref and "TC-KCAT-1" in (m["payload"] or "")]
    assert ours, "kcat did not see our message"
    item = ours[-1]
    flat = item["headers"]
    headers = dict(zip(flat[::2], flat[1::2], strict=True))
    assert headers == {
        "ce_specversion": "1.0",
        "ce_id": message.id,
        "ce_source": "transport",
        "ce_type": DATASET,
        "ce_time": "2026-03-02T10:15:00+08:00",
        "ce_subject": person_ref,
        "ce_dataschema": CATALOG.get(DATASET).dataschema,
        "content-type": "application/json",
        "ce_keyid": pseudonym_key_id(bus_settings.pseudonym_key_bytes()),
    }
    value = orjson.loads(item["payload"])
    assert value["person_ref"] == person_ref
    assert value["mode"] == "rail"
    assert "citizen_id" not in value
