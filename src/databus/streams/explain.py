"""What the bus knows and decided about one person, for an officer who must justify it.

Everything is read from Kafka, not from a worker's local store: the person's decisions
from the derived topics, the source events their evidence ids point to, and the latest
state from the state table's changelog. Only the person's partition is read (every
person-keyed topic puts a person in the same partition).

Only what the principal may read is read. The super user (or anyone on a broker
without ACLs) sees everything; an agency sees its share views instead of the datasets
they project (``share.<agency>.<dataset>``, given as ``views``), and no worker state.
Each topic is read on its own, so one refusal only hides that topic; the explanation
lists what could not be seen, and why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError
from pydantic import BaseModel

from databus.catalog import CATALOG, Catalog
from databus.errors import DecodeError
from databus.partitioner import default_partition
from databus.rules import PersonState
from databus.settings import Settings
from databus.streams.names import APP_ID, changelog_topic
from databus.wire import Event, decode

DERIVED = ("derived.pension_status.v1", "derived.fraud_alert.v1", "derived.elderly_allowance.v1")
_FETCH_TIMEOUT_MS = 1000
_IDLE_LIMIT_S = 60.0


@dataclass(frozen=True, slots=True)
class Unseen:
    """A topic the explanation could not read, and why."""

    topic: str
    why: str


@dataclass
class Explanation:
    """A person's decisions (oldest first), the evidence behind them, and current state;
    what was read, and what could not be."""

    person_ref: str
    partition: int
    decisions: list[Event[BaseModel]] = field(default_factory=list)
    evidence: dict[str, Event[BaseModel]] = field(default_factory=dict)
    state: dict[str, Any] | None = None
    principal: str = "ANONYMOUS"
    read: list[str] = field(default_factory=list)
    unseen: list[Unseen] = field(default_factory=list)
    datasets: dict[str, str] = field(default_factory=dict)
    """The dataset each read topic holds (a share view holds its source's records)."""

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "person_ref": self.person_ref,
            "partition": self.partition,
            "principal": self.principal,
            "state": self.state,
            "decisions": [
                {
                    **event.to_json_dict(),
                    "dataset": self.datasets.get(event.topic, event.topic),
                    "evidence_events": [
                        self.evidence[i].to_json_dict()
                        | {"dataset": self.datasets.get(self.evidence[i].topic, "")}
                        for i in _evidence_ids(event)
                        if i in self.evidence
                    ],
                }
                for event in self.decisions
            ],
            "read": self.read,
            "unseen": [{"topic": u.topic, "why": u.why} for u in self.unseen],
        }


def _evidence_ids(event: Event[BaseModel]) -> list[str]:
    data = event.record.model_dump()
    ids = [item["id"] for item in data.get("evidence") or []]
    ids.extend(data[name]["id"] for name in ("death_evidence", "activity") if data.get(name))
    return ids


async def explain(
    settings: Settings,
    person_ref: str,
    *,
    app_id: str = APP_ID,
    catalog: Catalog = CATALOG,
    views: Mapping[str, str] | None = None,
) -> Explanation:
    """Read everything about ``person_ref`` that the principal may read from its
    partition of each relevant topic. ``views``: dataset → the share topic this
    principal reads it through (``catalog`` must hold those views)."""
    key = person_ref.encode()
    partition = default_partition(key, settings.partitions)
    result = Explanation(person_ref, partition, principal=settings.principal())
    views = views or {}
    consumer = AIOKafkaConsumer(
        **settings.kafka_client_options(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        visible = await consumer.topics()  # the broker lists only what we may describe
        state_topic = changelog_topic(app_id)
        for topic in [*DERIVED, *(d.topic for d in catalog.sources()), state_topic]:
            read, why = await _read_one(consumer, topic, partition, key, visible)
            where = topic
            if read is None and topic in views:
                where = views[topic]
                read, view_why = await _read_one(consumer, where, partition, key, visible)
                why = f"{why}; nor its share view {where}: {view_why}"
            if read is None:
                shown = f"{topic} (the worker's state)" if topic == state_topic else topic
                result.unseen.append(Unseen(shown, why or ""))
                continue
            result.read.append(where)
            result.datasets[where] = topic
            _take(result, read, catalog, state=topic == state_topic)
    finally:
        await consumer.stop()
    return result


def _take(result: Explanation, messages: list[Any], catalog: Catalog, *, state: bool) -> None:
    """Add one topic's messages of the person to the explanation."""
    for message in messages:
        if state:
            if message.value:
                result.state = PersonState.from_bytes(message.value).to_json()
            continue
        try:
            event = decode(message, catalog)
        except DecodeError:
            continue
        if result.datasets.get(message.topic, message.topic) in DERIVED:
            if all(e.envelope.id != event.envelope.id for e in result.decisions):
                result.decisions.append(event)
        else:
            result.evidence[event.envelope.id] = event


async def _read_one(
    consumer: AIOKafkaConsumer, topic: str, partition: int, key: bytes, visible: set[str]
) -> tuple[list[Any] | None, str | None]:
    """The person's messages in one topic, or None and why not."""
    if topic not in visible:
        return None, "not visible to this principal (not granted, or no such topic)"
    try:
        return await _read_partition(consumer, topic, partition, key), None
    except TopicAuthorizationFailedError:
        return None, "not granted to this principal (TOPIC_AUTHORIZATION_FAILED)"
    except KafkaError as failed:
        return None, f"could not be read ({failed!r})"


async def _read_partition(
    consumer: AIOKafkaConsumer, topic: str, partition: int, key: bytes
) -> list[Any]:
    """Every message with ``key`` in ``partition`` of ``topic``, in offset order."""
    tp = TopicPartition(topic, partition)
    consumer.assign([tp])
    end = (await consumer.end_offsets([tp]))[tp]
    await consumer.seek_to_beginning(tp)
    found: list[Any] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _IDLE_LIMIT_S
    while await consumer.position(tp) < end:
        batches = await consumer.getmany(tp, timeout_ms=_FETCH_TIMEOUT_MS)
        if batches.get(tp):
            deadline = loop.time() + _IDLE_LIMIT_S
        elif loop.time() > deadline:
            raise TimeoutError(f"no progress reading {topic}[{partition}]")
        found.extend(m for m in batches.get(tp, []) if m.key == key and m.offset < end)
    return found
