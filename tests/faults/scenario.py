"""The kill -9 scenario: a synthetic province cut into steps that a worker sees in lock-step.

A worker reads its input topics in no fixed order relative to each other, and some
decisions depend on that order (README: a later exam processed before an earlier visit
leaves the visit nothing to raise). To compare two runs decision by decision, each
*step* holds the records of one dataset only (or only clock ticks), and the next step is
published once the worker has committed the previous one. Within a step, one person's
records are in one partition, in order; so every person sees the same sequence of
events in every run, however the worker batches, crashes and replays.

The province: its registers (one step per dataset), a tick for the first day (so that
the residents aged 80 or more hold an allowance before anyone moves out), then blocks
of days: each dataset's records of the block, then the block's ticks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from databus.catalog import CATALOG, CLOCK
from databus.client.intake import Intake
from databus.identity import Pseudonymizer
from databus.partitioner import default_partition
from databus.records import ClockTick
from databus.rules import Policy
from databus.sim import AgencyRecord, Province, SimulationConfig
from databus.sim.publishing import CLOCK_SOURCE
from databus.streams.clock import tick_id
from databus.streams.processor import DecisionProcessor
from databus.wire import Encoder, Message

SOURCES = [dataset.name for dataset in CATALOG.sources()]
INPUT_TOPICS = [CATALOG.get(name).topic for name in SOURCES] + [CLOCK.topic]
DERIVED = ["derived.pension_status.v1", "derived.fraud_alert.v1", "derived.elderly_allowance.v1"]

#: Every kind of decision DOMAIN.md defines: (dataset, decision or kind, reason).
DECISION_KINDS = frozenset(
    {
        ("derived.pension_status.v1", "confirmed", "evidence"),
        ("derived.pension_status.v1", "reminder", "no_evidence"),
        ("derived.pension_status.v1", "suspended", "no_evidence"),
        ("derived.pension_status.v1", "resumed", "evidence"),
        ("derived.pension_status.v1", "suspended", "deceased"),
        ("derived.fraud_alert.v1", "post_mortem_activity", None),
        ("derived.elderly_allowance.v1", "granted", "age"),
        ("derived.elderly_allowance.v1", "tier_changed", "age"),
        ("derived.elderly_allowance.v1", "stopped", "deceased"),
        ("derived.elderly_allowance.v1", "stopped", "moved_out"),
        # A death certificate issued by mistake for a living pensioner, withdrawn:
        ("derived.pension_status.v1", "resumed", "retracted"),
        ("derived.fraud_alert.v1", "withdrawn", None),
    }
)

DecisionFacts = dict[str, tuple[str, dict[str, Any]]]
"""Decisions by id: (dataset, the record as JSON)."""


@dataclass(frozen=True)
class Placed:
    """A message and the partition it goes to."""

    message: Message
    partition: int


@dataclass(frozen=True)
class Step:
    """Messages of one topic that the worker must have committed before the next step."""

    name: str
    topic: str
    messages: list[Placed]


@dataclass(frozen=True)
class Scenario:
    """A reproducible sequence of steps."""

    config: SimulationConfig
    steps: list[Step]

    @property
    def events(self) -> int:
        """Every message of every step (records and ticks)."""
        return sum(len(step.messages) for step in self.steps)


def build_scenario(
    config: SimulationConfig, pseudonym_key: bytes, partitions: int, *, block_days: int
) -> Scenario:
    """The steps of a simulated province, encoded as the publisher encodes them."""
    province = Province(config)
    pseudonymizer = Pseudonymizer(pseudonym_key)
    intakes = {name: Intake(CATALOG.get(name), pseudonymizer) for name in SOURCES}

    def records_step(name: str, dataset: str, records: Sequence[dict[str, Any]]) -> Step:
        placed = []
        for values in records:
            message = intakes[dataset].from_mapping(values)
            if not isinstance(message, Message):
                raise AssertionError(f"the simulator wrote an invalid record: {message.summary()}")
            assert message.key is not None
            placed.append(Placed(message, default_partition(message.key, partitions)))
        return Step(f"{name} {dataset}", CATALOG.get(dataset).topic, placed)

    steps = [
        records_step("registers", dataset, values)
        for dataset, values in _by_dataset(province.roster()).items()
    ]
    days = list(province.days())
    steps.append(_ticks([days[0].date], partitions))
    for first in range(0, len(days), block_days):
        block = days[first : first + block_days]
        groups = _by_dataset(record for day in block for record in day.records)
        label = f"days {block[0].date}..{block[-1].date}"
        steps += [records_step(label, name, groups[name]) for name in SOURCES if name in groups]
        steps.append(_ticks([day.date for day in block], partitions))
    return Scenario(config, steps)


def _by_dataset(records: Iterable[AgencyRecord]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for dataset, values in records:
        groups.setdefault(dataset, []).append(values)
    return groups


def _ticks(dates: Sequence[dt.date], partitions: int) -> Step:
    """One tick per day and partition, as ``databus clock tick`` sends them."""
    encoder = Encoder(CLOCK, CLOCK_SOURCE)
    placed = [
        Placed(
            encoder.encode(
                ClockTick(as_of=day).model_dump(mode="json"), event_id=tick_id(day, partition)
            ),
            partition,
        )
        for day in dates
        for partition in range(partitions)
    ]
    return Step(f"ticks {dates[0]}..{dates[-1]}", CLOCK.topic, placed)


@dataclass(frozen=True)
class _Consumed:
    """A message as a consumer reads it (the processor's ``KafkaRecord``)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


class _Store(dict[bytes, bytes]):
    """The processor's state store, in memory."""


def decide_in_memory(scenario: Scenario, partitions: int, policy: Policy) -> DecisionFacts:
    """The decisions of the scenario by the worker's own processor, without Kafka: what
    any correct run must produce, however it is interrupted."""
    processor = DecisionProcessor(_Store(), policy, partitions)
    offsets: dict[tuple[str, int], int] = {}
    facts: DecisionFacts = {}
    for step in scenario.steps:
        batch = []
        for placed in step.messages:
            position = (step.topic, placed.partition)
            offset = offsets.get(position, 0)
            offsets[position] = offset + 1
            message = placed.message
            batch.append(
                _Consumed(step.topic, placed.partition, offset, message.key, message.value,
                          message.headers)
            )  # fmt: skip
        output = processor.process(batch)
        if output.dead_letters:
            raise AssertionError(f"dead letters in the scenario: {output.dead_letters[:3]}")
        for decision in output.decisions:
            facts[decision.id] = (decision.dataset, decision.record.model_dump(mode="json"))
    return facts


def kind_of(dataset: str, record: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """(dataset, decision or kind, reason) of a decision record."""
    return dataset, record.get("decision") or record.get("kind"), record.get("reason")


def facts_of(events: Iterable[tuple[str, str, BaseModel]]) -> DecisionFacts:
    """Decisions by id from (id, dataset, record) of derived events read back."""
    return {ident: (dataset, record.model_dump(mode="json")) for ident, dataset, record in events}
