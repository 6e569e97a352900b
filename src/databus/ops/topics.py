"""Creating and checking the catalog's topics (``databus topics apply``).

Co-partitioning is what lets agents join person-keyed streams, so an existing
co-partitioned topic whose partition count differs from the catalog's is refused,
before anything is changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import for_code

from databus.catalog import CATALOG, Catalog, Dataset
from databus.errors import DatabusError, TopicLayoutError
from databus.settings import Settings

#: How long ``apply`` waits for topics it created to show in the cluster metadata.
VISIBLE_TIMEOUT_S = 30

Action = Literal["created", "unchanged", "config updated", "partitions added"]


@dataclass(frozen=True, slots=True)
class TopicChange:
    """What ``apply`` did to one topic."""

    topic: str
    action: Action
    partitions: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class _Existing:
    partitions: int
    config: dict[str, str]


async def apply_topics(
    settings: Settings, catalog: Catalog = CATALOG, *, only: Iterable[str] | None = None
) -> list[TopicChange]:
    """Create missing topics and align configs; idempotent.

    Raises :class:`TopicLayoutError` (and changes nothing) when a co-partitioned topic
    exists with another partition count.
    """
    wanted = [d for d in catalog if only is None or d.name in set(only)]
    admin = AIOKafkaAdminClient(
        **settings.kafka_client_options(), client_id=f"{settings.client_id}-admin"
    )
    await admin.start()
    try:
        existing = await _describe(admin, [d.topic for d in wanted])
        _refuse_layout_conflicts(wanted, existing, settings.partitions)
        changes = [
            await _apply_one(admin, dataset, existing.get(dataset.topic), settings)
            for dataset in wanted
        ]
        await _wait_until_visible(admin, [c.topic for c in changes if c.action == "created"])
        return changes
    finally:
        await admin.close()


def _refuse_layout_conflicts(
    datasets: list[Dataset], existing: dict[str, _Existing], shared: int
) -> None:
    conflicts = [
        f"{d.topic} has {existing[d.topic].partitions} partitions, the catalog says {shared}"
        for d in datasets
        if d.copartitioned and d.topic in existing and existing[d.topic].partitions != shared
    ]
    if conflicts:
        raise TopicLayoutError(
            "refusing to change topics: person-keyed topics must share one partition count "
            "so that agents can join them (co-partitioning), and Kafka cannot lower a "
            "partition count or re-key existing records. Conflicts: "
            + "; ".join(conflicts)
            + ". Set DATABUS_PARTITIONS to the existing count, or migrate to new topics.",
            topic=conflicts[0].split(" ", 1)[0],
        )


async def _apply_one(
    admin: AIOKafkaAdminClient, dataset: Dataset, current: _Existing | None, settings: Settings
) -> TopicChange:
    partitions = dataset.partitions(settings.partitions)
    wanted_config = dataset.topic_config()
    if current is None:
        response = await admin.create_topics(
            [
                NewTopic(
                    dataset.topic,
                    partitions,
                    settings.replication_factor,
                    topic_configs=wanted_config,
                )
            ]
        )
        _raise_errors(response.topic_errors, "create", ignore={"TopicAlreadyExistsError"})
        return TopicChange(dataset.topic, "created", partitions)
    if current.partitions < partitions and not dataset.copartitioned:
        response = await admin.create_partitions({dataset.topic: NewPartitions(partitions)})
        _raise_errors(response.topic_errors, "add partitions to")
        return TopicChange(dataset.topic, "partitions added", partitions)
    drift = {k: v for k, v in wanted_config.items() if current.config.get(k) != v}
    if drift:
        await _alter_config(admin, dataset.topic, wanted_config)
        detail = ", ".join(f"{k}: {current.config.get(k)} -> {v}" for k, v in drift.items())
        return TopicChange(dataset.topic, "config updated", current.partitions, detail)
    return TopicChange(dataset.topic, "unchanged", current.partitions)


async def _wait_until_visible(admin: AIOKafkaAdminClient, topics: list[str]) -> None:
    """Return once new topics show in metadata, so the next caller sees them."""
    deadline = asyncio.get_running_loop().time() + VISIBLE_TIMEOUT_S
    missing = set(topics)
    while missing:
        missing -= set(await admin.list_topics())
        if not missing:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise DatabusError(f"created topics not visible after {VISIBLE_TIMEOUT_S} s: {missing}")
        await asyncio.sleep(0.1)


async def _describe(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, _Existing]:
    present = set(await admin.list_topics()) & set(topics)
    if not present:
        return {}
    described = await admin.describe_topics(sorted(present))
    counts = {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in counts]
    configs: dict[str, dict[str, str]] = {name: {} for name in counts}
    for response in await admin.describe_configs(resources):
        for resource in response.resources:
            name, entries = resource[3], resource[4]
            configs[name] = {entry[0]: entry[1] for entry in entries}
    return {name: _Existing(counts[name], configs[name]) for name in counts}


async def _alter_config(admin: AIOKafkaAdminClient, topic: str, config: dict[str, str]) -> None:
    responses = await admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, configs=config)]
    )
    for response in responses:
        for resource in response.resources:
            code, message = resource[0], resource[1]
            if code != 0:
                raise DatabusError(f"cannot update the config of {topic}: {message or code}")


def _raise_errors(
    errors: list[Any], verb: str, ignore: frozenset[str] | set[str] = frozenset()
) -> None:
    for topic, code, *rest in errors:
        if code == 0:
            continue
        error = for_code(code)
        if error.__name__ in ignore:
            continue
        message = rest[0] if rest and rest[0] else error.__name__
        raise DatabusError(f"cannot {verb} topic {topic}: {message}")
