"""Creating and checking the catalog's topics (``databus topics apply``), and rendering
them as Kubernetes resources (``databus topics render``).

Co-partitioning is what lets agents join person-keyed streams, so an existing
co-partitioned topic whose partition count differs from the catalog's is refused,
before anything is changed. Both paths take partitions, replication and topic configs
from one place, :func:`topic_spec`, so a cluster set up either way looks the same.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import for_code

from databus.catalog import CATALOG, Catalog, Dataset
from databus.errors import DatabusError, TopicLayoutError
from databus.ops.broker_config import min_insync_replicas
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
class TopicSpec:
    """What the catalog wants of one topic: its size, replication and configs."""

    topic: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str]


#: Replicas of a topic when the cluster has enough brokers and no one says otherwise.
DEFAULT_REPLICATION = 3


def topic_spec(dataset: Dataset, partitions: int, replication_factor: int) -> TopicSpec:
    """The topic a dataset needs, given the partition count shared by co-partitioned topics.

    From 3 replicas on, a write needs 2 of them (``min.insync.replicas``): with
    ``acks=all`` nothing acknowledged is lost when one broker fails."""
    config = dataset.topic_config()
    in_sync = min_insync_replicas(replication_factor)
    if in_sync > 1:
        config = {**config, "min.insync.replicas": str(in_sync)}
    return TopicSpec(dataset.topic, dataset.partitions(partitions), replication_factor, config)


async def cluster_replication(settings: Settings, admin: AIOKafkaAdminClient | None = None) -> int:
    """The replication factor topics get: the setting, or 3 on a cluster of 3 brokers or
    more (one per broker below that)."""
    if settings.replication_factor is not None:
        return settings.replication_factor
    own = admin is None
    client = admin or AIOKafkaAdminClient(
        **settings.kafka_client_options(), client_id=f"{settings.client_id}-admin"
    )
    if own:
        await client.start()
    try:
        cluster = await client.describe_cluster()
    finally:
        if own:
            await client.close()
    brokers = len(cluster.get("brokers", ())) or 1
    return min(DEFAULT_REPLICATION, brokers)


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
        replication = await cluster_replication(settings, admin)
        changes = [
            await _apply_one(admin, dataset, existing.get(dataset.topic), settings, replication)
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
    admin: AIOKafkaAdminClient,
    dataset: Dataset,
    current: _Existing | None,
    settings: Settings,
    replication: int,
) -> TopicChange:
    spec = topic_spec(dataset, settings.partitions, replication)
    wanted_config = dict(spec.config)
    if current is None:
        response = await admin.create_topics(
            [
                NewTopic(
                    spec.topic,
                    spec.partitions,
                    spec.replication_factor,
                    topic_configs=wanted_config,
                )
            ]
        )
        _raise_errors(response.topic_errors, "create", ignore={"TopicAlreadyExistsError"})
        return TopicChange(spec.topic, "created", spec.partitions)
    if current.partitions < spec.partitions and not dataset.copartitioned:
        response = await admin.create_partitions({spec.topic: NewPartitions(spec.partitions)})
        _raise_errors(response.topic_errors, "add partitions to")
        return TopicChange(spec.topic, "partitions added", spec.partitions)
    drift = {k: v for k, v in wanted_config.items() if current.config.get(k) != v}
    if drift:
        await _alter_config(admin, spec.topic, wanted_config)
        detail = ", ".join(f"{k}: {current.config.get(k)} -> {v}" for k, v in drift.items())
        return TopicChange(spec.topic, "config updated", current.partitions, detail)
    return TopicChange(spec.topic, "unchanged", current.partitions)


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


#: The Strimzi API version of the rendered ``KafkaTopic`` resources.
STRIMZI_API_VERSION = "kafka.strimzi.io/v1beta2"


def render_strimzi(
    *, cluster: str, partitions: int, replication_factor: int, catalog: Catalog = CATALOG
) -> str:
    """Every catalog topic as a Strimzi ``KafkaTopic`` resource, in one YAML stream.

    ``cluster`` is the name of the Strimzi ``Kafka`` resource whose topic operator manages
    them. The header names the command that reproduces the output, so a committed copy
    can be checked for drift.
    """
    command = (
        f"databus topics render --format strimzi --cluster {cluster} "
        f"--partitions {partitions} --replication-factor {replication_factor}"
    )
    lines = [
        "# KafkaTopic resources for the Strimzi topic operator, generated from the databus",
        "# catalog (src/databus/catalog.py) and grants (deploy/grants: one share topic per",
        "# grant). Do not edit; regenerate with",
        f"#   {command}",
    ]
    names: dict[str, str] = {}
    for dataset in catalog:
        spec = topic_spec(dataset, partitions, replication_factor)
        name = _resource_name(spec.topic)
        if name in names:
            raise DatabusError(f"topics {names[name]} and {spec.topic} map to one name {name}")
        names[name] = spec.topic
        lines += [
            "---",
            f"apiVersion: {STRIMZI_API_VERSION}",
            "kind: KafkaTopic",
            "metadata:",
            f"  name: {name}",
            "  labels:",
            f"    strimzi.io/cluster: {_quote(cluster)}",
            "    app.kubernetes.io/part-of: databus",
            f"    databus/owner: {_quote(dataset.owner)}",
            "spec:",
            f"  topicName: {_quote(spec.topic)}",
            f"  partitions: {spec.partitions}",
            f"  replicas: {spec.replication_factor}",
            "  config:",
            *(f"    {key}: {_quote(value)}" for key, value in sorted(spec.config.items())),
        ]
    return "\n".join(lines) + "\n"


def _resource_name(topic: str) -> str:
    """A Kubernetes object name for a topic: lower case, no underscores (RFC 1123)."""
    return topic.lower().replace("_", "-")


def _quote(value: str) -> str:
    """A YAML double-quoted scalar (a JSON string is one)."""
    return json.dumps(value)
