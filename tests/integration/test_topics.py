"""``topics apply``: idempotent, and refuses a co-partitioning conflict."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from databus import records as r
from databus.catalog import CATALOG, Catalog, Dataset
from databus.errors import TopicLayoutError
from databus.governance.views import configured_catalog, default_grants_path
from databus.ops.topics import apply_topics
from databus.settings import Settings
from tests.integration.bus import run_cli

pytestmark = pytest.mark.integration


def _private_catalog() -> Catalog:
    """Two person-keyed datasets and one free-standing one, under fresh names."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    visit = CATALOG.get("health.hospital_visit.v1")
    return Catalog(
        [
            Dataset(
                name=f"{prefix}.visit.v1",
                owner="health",
                description="test",
                bus_model=r.HospitalVisit,
                classification={k: v for k, v in visit.classification.items() if k != "citizen_id"},
                retention_ms=7 * 86_400_000,
            ),
            Dataset(
                name=f"{prefix}.other.v1",
                owner="health",
                description="test",
                bus_model=r.HospitalVisit,
                classification={k: v for k, v in visit.classification.items() if k != "citizen_id"},
            ),
            Dataset(
                name=f"{prefix}.dlq.v1",
                owner="databus",
                description="test",
                bus_model=r.Rejected,
                classification={},
                person_keyed=False,
                copartitioned=False,
                fixed_partitions=2,
            ),
        ]
    )


async def test_apply_twice_creates_then_leaves_alone(bus_settings: Settings) -> None:
    catalog = _private_catalog()
    first = await apply_topics(bus_settings, catalog)
    assert [c.action for c in first] == ["created"] * 3
    assert [c.partitions for c in first] == [bus_settings.partitions] * 2 + [2]
    second = await apply_topics(bus_settings, catalog)
    assert [c.action for c in second] == ["unchanged"] * 3


async def test_config_drift_is_corrected(bus_settings: Settings) -> None:
    catalog = _private_catalog()
    await apply_topics(bus_settings, catalog)
    first = next(iter(catalog))
    changed = Catalog(
        [
            Dataset(**{**first.__dict__, "retention_ms": 9 * 86_400_000})
            if d.name == first.name
            else d
            for d in catalog
        ]
    )
    changes = {c.topic: c for c in await apply_topics(bus_settings, changed)}
    assert changes[first.name].action == "config updated"
    assert "604800000 -> 777600000" in changes[first.name].detail
    again = {c.topic: c.action for c in await apply_topics(bus_settings, changed)}
    assert again[first.name] == "unchanged"


async def test_partition_count_conflict_is_refused_before_any_change(
    bus_settings: Settings,
) -> None:
    catalog = _private_catalog()
    visit, other, dlq = list(catalog)
    admin = AIOKafkaAdminClient(bootstrap_servers=bus_settings.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(visit.topic, 3, 1)])
        with pytest.raises(TopicLayoutError, match=r"co-partitioning") as caught:
            await apply_topics(bus_settings, catalog)
        assert f"{visit.topic} has 3 partitions" in str(caught.value)
        assert caught.value.topic == visit.topic
        existing = set(await admin.list_topics())
        assert other.topic not in existing
        assert dlq.topic not in existing
    finally:
        await admin.close()


def test_cli_apply_is_idempotent(bus_settings: Settings) -> None:
    first = run_cli(bus_settings, "topics", "apply")
    second = run_cli(bus_settings, "topics", "apply")
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    # The catalog's topics and a share topic per grant of the checkout (deploy/grants).
    wanted = configured_catalog(Settings(grants=default_grants_path()))
    assert len(wanted) > len(CATALOG)
    assert f"{len(wanted)} topics" in second.stdout
    assert ", 0 created" in second.stdout
    assert second.stdout.count("unchanged") == len(wanted)
