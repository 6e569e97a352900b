"""What the bus knows and decided about one person, for an officer who must justify it.

Everything is read from Kafka, not from a worker's local store: the person's decisions
from the derived topics, the source events their evidence ids point to, and the latest
state from the state table's changelog. Only the person's partition is read (every
person-keyed topic puts a person in the same partition).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import BaseModel

from databus.catalog import CATALOG, Catalog
from databus.client.batching import default_partition
from databus.errors import DecodeError
from databus.rules import PersonState
from databus.settings import Settings
from databus.streams.names import APP_ID, changelog_topic
from databus.wire import Event, decode

DERIVED = ("derived.pension_status.v1", "derived.fraud_alert.v1", "derived.elderly_allowance.v1")


@dataclass
class Explanation:
    """A person's decisions (oldest first), the evidence behind them, and current state."""

    person_ref: str
    partition: int
    decisions: list[Event[BaseModel]] = field(default_factory=list)
    evidence: dict[str, Event[BaseModel]] = field(default_factory=dict)
    state: dict[str, Any] | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "person_ref": self.person_ref,
            "partition": self.partition,
            "state": self.state,
            "decisions": [
                {
                    **event.to_json_dict(),
                    "evidence_events": [
                        self.evidence[i].to_json_dict()
                        for i in _evidence_ids(event)
                        if i in self.evidence
                    ],
                }
                for event in self.decisions
            ],
        }


def _evidence_ids(event: Event[BaseModel]) -> list[str]:
    data = event.record.model_dump()
    ids = [item["id"] for item in data.get("evidence") or []]
    ids.extend(data[name]["id"] for name in ("death_evidence", "activity") if data.get(name))
    return ids


async def explain(
    settings: Settings, person_ref: str, *, app_id: str = APP_ID, catalog: Catalog = CATALOG
) -> Explanation:
    """Read everything about ``person_ref`` from its partition of each relevant topic."""
    key = person_ref.encode()
    partition = default_partition(key, settings.partitions)
    result = Explanation(person_ref, partition)
    consumer = AIOKafkaConsumer(
        **settings.kafka_client_options(), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        sources = [d.topic for d in catalog.sources()]
        existing = await consumer.topics()
        topics = [t for t in [*DERIVED, *sources, changelog_topic(app_id)] if t in existing]
        for message in await _read_partition(consumer, topics, partition, key):
            if message.topic == changelog_topic(app_id):
                if message.value:
                    result.state = PersonState.from_bytes(message.value).to_json()
                continue
            try:
                event = decode(message, catalog)
            except DecodeError:
                continue
            if message.topic in DERIVED:
                if all(e.envelope.id != event.envelope.id for e in result.decisions):
                    result.decisions.append(event)
            else:
                result.evidence[event.envelope.id] = event
    finally:
        await consumer.stop()
    return result


async def _read_partition(
    consumer: AIOKafkaConsumer, topics: list[str], partition: int, key: bytes
) -> list[Any]:
    """Every message with ``key`` in ``partition`` of ``topics``, in offset order."""
    partitions = [TopicPartition(topic, partition) for topic in topics]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    ends = await consumer.end_offsets(partitions)
    remaining = {tp for tp in partitions if ends[tp] > 0}
    found: list[Any] = []
    while remaining:
        batches = await consumer.getmany(timeout_ms=1000)
        for tp, messages in batches.items():
            found.extend(m for m in messages if m.key == key)
            if messages and messages[-1].offset + 1 >= ends[tp]:
                remaining.discard(tp)
    return found
