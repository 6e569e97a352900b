"""The work of one batch of input messages, without Faust.

Decode each message, feed it to the pure rules with the person's state, keep the new
state, and collect what must be written: derived events, dead letters, state changes.
Faust only supplies the messages and a :class:`StateStore`; unit tests use a dict.

Clock ticks visit only the persons whose :func:`~databus.rules.next_due` has come, from
an in-memory index per partition that is rebuilt from the store after a (re)start.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import ValidationError

from databus.catalog import CATALOG, CLOCK, Catalog
from databus.client.batching import default_partition
from databus.errors import DecodeError
from databus.identity import mask_id_like
from databus.records import ClockTick, Reason
from databus.rules import Decision, Observation, PersonState, Policy, next_due, on_event, on_tick
from databus.wire import KafkaRecord, Rejection, decode

log = logging.getLogger(__name__)


class StateStore(Protocol):
    """Per-person state by ``person_ref`` bytes (a Faust table, or a dict in tests)."""

    def get(self, key: bytes) -> bytes | None: ...
    def __setitem__(self, key: bytes, value: bytes) -> None: ...
    def items(self) -> Iterable[tuple[bytes, bytes]]: ...


@dataclass(slots=True)
class Output:
    """What one batch produced."""

    decisions: list[Decision] = field(default_factory=list)
    dead_letters: list[Rejection] = field(default_factory=list)
    events_in: dict[str, int] = field(default_factory=dict)
    ticks: int = 0


@dataclass(slots=True)
class _Batch:
    """One batch's work in progress: changed states, and which of them the due index
    of their partition has not seen yet (indexed at the partition's next tick or at the
    end of the batch, once each — not at every tick)."""

    output: Output = field(default_factory=Output)
    dirty: dict[bytes, PersonState] = field(default_factory=dict)
    unindexed: dict[int, set[bytes]] = field(default_factory=dict)

    def changed(self, partition: int, key: bytes, state: PersonState) -> None:
        self.dirty[key] = state
        self.unindexed.setdefault(partition, set()).add(key)


class DecisionProcessor:
    """Applies the rules to batches of messages from the co-partitioned input topics."""

    def __init__(
        self,
        store: StateStore,
        policy: Policy,
        partitions: int,
        *,
        catalog: Catalog = CATALOG,
    ) -> None:
        self._store = store
        self._policy = policy
        self._partitions = partitions
        self._catalog = catalog
        self._due: dict[int, dict[bytes, dt.date]] = {}

    def process(self, messages: Sequence[KafkaRecord]) -> Output:
        """Handle a batch in order; state changes are written once per person at the end."""
        batch = _Batch()
        for message in messages:
            if message.topic == CLOCK.topic:
                self._tick(message, batch)
            else:
                self._observe(message, batch)
        for key, state in batch.dirty.items():
            self._store[key] = state.to_bytes()
        for partition, keys in batch.unindexed.items():
            for key in keys:
                self._index(partition, key, batch.dirty[key])
        return batch.output

    def _observe(self, message: KafkaRecord, batch: _Batch) -> None:
        out = batch.output
        try:
            event = decode(message, self._catalog)
            person_ref: str = event.record.person_ref  # type: ignore[attr-defined]
        except (DecodeError, AttributeError) as error:
            out.dead_letters.append(_dead_letter(message, error))
            return
        out.events_in[event.envelope.type] = out.events_in.get(event.envelope.type, 0) + 1
        key = person_ref.encode()
        state = self._state(key, person_ref, batch.dirty)
        observation = Observation(event.envelope.id, event.envelope.type, event.record)
        new_state, decisions = on_event(state, observation, self._policy)
        batch.changed(message.partition, key, new_state)
        out.decisions += decisions

    def _tick(self, message: KafkaRecord, batch: _Batch) -> None:
        out = batch.output
        try:
            tick = ClockTick.model_validate_json(message.value or b"")
        except ValidationError as invalid:
            reason = DecodeError(f"invalid clock tick: {invalid.errors()[0]['msg']}")
            out.dead_letters.append(_dead_letter(message, reason))
            return
        out.ticks += 1
        partition = message.partition
        due = self._due_in(partition, batch)
        for key in [k for k, when in due.items() if when <= tick.as_of]:
            state = self._state(key, key.decode(), batch.dirty)
            new_state, decisions = on_tick(state, tick.as_of, self._policy)
            batch.dirty[key] = new_state
            out.decisions += decisions
            self._index(partition, key, new_state)

    def _state(self, key: bytes, person_ref: str, dirty: dict[bytes, PersonState]) -> PersonState:
        state = dirty.get(key)
        if state is None:
            stored = self._store.get(key)
            state = PersonState.from_bytes(stored) if stored else PersonState.empty(person_ref)
        return state

    def _due_in(self, partition: int, batch: _Batch) -> dict[bytes, dt.date]:
        """The due index of a partition, built from the store on first use, with the
        persons this batch changed in it since its last tick."""
        due = self._due.get(partition)
        if due is None:
            due = self._due[partition] = {}
            for key, value in self._stored_in(partition):
                when = next_due(PersonState.from_bytes(value), self._policy)
                if when is not None:
                    due[key] = when
            log.info("partition %d: %d persons due on some future tick", partition, len(due))
        for key in batch.unindexed.pop(partition, ()):
            self._index(partition, key, batch.dirty[key])
        return due

    def _stored_in(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        for key, value in self._store.items():
            if default_partition(key, self._partitions) == partition:
                yield key, value

    def _index(self, partition: int, key: bytes, state: PersonState) -> None:
        due = self._due.get(partition)
        if due is None:
            return  # built from the store when the first tick arrives
        when = next_due(state, self._policy)
        if when is None:
            due.pop(key, None)
        else:
            due[key] = when

    def forget_partitions(self, partitions: Iterable[int]) -> None:
        """Drop the due index of revoked partitions (rebuilt if they come back)."""
        for partition in partitions:
            self._due.pop(partition, None)


def _dead_letter(message: KafkaRecord, error: Exception) -> Rejection:
    """A dead letter for an input message the worker cannot use."""
    where = f"{message.topic}[{message.partition}]@{message.offset}"
    reason = error.reason if isinstance(error, DecodeError) else str(error)
    raw = (message.value or b"")[:2048].decode("utf-8", errors="replace")
    return Rejection(
        dataset=message.topic,
        agency="databus-worker",
        raw=mask_id_like(raw),
        reasons=[Reason(field="$", message=reason)],
        source=where,
    )
