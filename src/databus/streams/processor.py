"""The work of one batch of input messages, without Faust.

Decode each message, check what only the bus can check (:mod:`databus.streams.admission`),
feed it to the pure rules with the person's state, keep the new state, and collect what
must be written: derived events, dead letters, state changes. Faust only supplies the
messages and a :class:`StateStore`; unit tests use a dict.

No message stops the worker (Kafka Streams' processing-exception handler is the model):
whatever goes wrong while handling one — it cannot be decoded, it fails a check, or the
rules raise on it — the message is dead-lettered with its ``topic[partition]@offset``
and the reason, the person's state stays as it was, and the batch goes on. A tick that
fails for one person is dead-lettered for that person and decided for the others.

Clock ticks visit only the persons whose :func:`~databus.rules.next_due` has come, from
an in-memory index per partition that is rebuilt from the store after a (re)start; a
reset visits every person of the partition (:func:`~databus.rules.on_reset`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import ValidationError

from databus import rules
from databus.catalog import CATALOG, CLOCK, Catalog
from databus.errors import DecodeError
from databus.identity import mask_id_like
from databus.partitioner import default_partition
from databus.records import ClockTick, Reason
from databus.records.base import Record
from databus.rules import Decision, Observation, PersonState, Policy, next_due, on_event, on_tick
from databus.streams.admission import (
    RESERVED_PREFIX,
    PartitionMeta,
    Refusal,
    check_record,
    meta_key,
)
from databus.streams.clock import tick_kind
from databus.wire import KafkaRecord, Rejection, decode

log = logging.getLogger(__name__)

#: Longest part of a dead-lettered message's value kept in the dead letter.
RAW_KEPT = 2048
#: The reason kind (records.dlq.REASON_KINDS) of each kind of dead letter.
_KINDS = {"future_dated": "future_dated", "processing_error": "invalid"}


class StateStore(Protocol):
    """Per-person state by ``person_ref`` bytes (a Faust table, or a dict in tests)."""

    def get(self, key: bytes) -> bytes | None: ...
    def __setitem__(self, key: bytes, value: bytes) -> None: ...
    def items(self) -> Iterable[tuple[bytes, bytes]]: ...


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message the worker could not use, and why (a closed set of reasons)."""

    rejection: Rejection
    reason: str
    """One of :data:`databus.metrics.DEAD_LETTER_REASONS`."""
    partition: int = -1
    """The input partition of the message (its dead letter is part of that partition's
    output)."""


@dataclass(slots=True)
class Output:
    """What one batch produced."""

    decisions: list[Decision] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    events_in: dict[str, int] = field(default_factory=dict)
    ticks: int = 0
    tick_kinds: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class _Batch:
    """One batch's work in progress: changed states, and which of them the due index
    of their partition has not seen yet (indexed at the partition's next tick or at the
    end of the batch, once each — not at every tick)."""

    output: Output = field(default_factory=Output)
    dirty: dict[bytes, PersonState] = field(default_factory=dict)
    unindexed: dict[int, dict[bytes, dt.date | None]] = field(default_factory=dict)
    """By partition, the changed persons and the day each is next due (None: never)."""
    metas: set[int] = field(default_factory=set)

    def changed(self, partition: int, key: bytes, state: PersonState, due: dt.date | None) -> None:
        self.dirty[key] = state
        self.unindexed.setdefault(partition, {})[key] = due


class DecisionProcessor:
    """Applies the rules to batches of messages from the co-partitioned input topics."""

    def __init__(
        self,
        store: StateStore,
        policy: Policy,
        partitions: int,
        *,
        catalog: Catalog = CATALOG,
        timestamps_per_second: int = 1000,
        demo_broker: bool = False,
    ) -> None:
        self._store = store
        self._policy = policy
        self._partitions = partitions
        self._catalog = catalog
        self._per_second = timestamps_per_second
        self.demo_broker = demo_broker
        """On a demo broker, records dated in the future and the demo key are accepted."""
        self._due: dict[int, dict[bytes, dt.date]] = {}
        self._metas: dict[int, PartitionMeta] = {}

    def process(self, messages: Sequence[KafkaRecord]) -> Output:
        """Handle a batch in order; state changes are written once per person at the end."""
        batch = _Batch()
        for message in messages:
            try:
                if message.topic == CLOCK.topic:
                    self._tick(message, batch)
                else:
                    self._observe(message, batch)
            except Exception as error:  # the last resort: nothing stops the worker
                log.exception("%s", _where(message))
                batch.output.dead_letters.append(_failed(message, error))
        for key, state in batch.dirty.items():
            self._store[key] = state.to_bytes()
        for partition in batch.metas:
            self._store[meta_key(partition, self._partitions)] = self._meta(partition).to_bytes()
        for partition, dues in batch.unindexed.items():
            for key, when in dues.items():
                self._index(partition, key, when)
        return batch.output

    # --- source records ----------------------------------------------------------------

    def _observe(self, message: KafkaRecord, batch: _Batch) -> None:
        out = batch.output
        try:
            event = decode(message, self._catalog)
            record = event.record
            person_ref: str = record.person_ref  # type: ignore[attr-defined]
            if not isinstance(record, Record):
                raise AttributeError("not a source record")
        except (DecodeError, AttributeError) as error:
            out.dead_letters.append(_dead_letter(message, "undecodable", _reason_of(error)))
            return
        meta = self._meta(message.partition)
        pinned = meta.key_id
        refusal = check_record(
            key=message.key,
            person_ref=person_ref,
            partition=message.partition,
            partitions=self._partitions,
            key_id=event.envelope.keyid,
            meta=meta,
            record=record,
            appended_at=self._appended_at(message),
            demo_broker=self.demo_broker,
        )
        if refusal is not None:
            out.dead_letters.append(_refused(message, refusal))
            return
        if meta.key_id != pinned:
            batch.metas.add(message.partition)
        out.events_in[event.envelope.type] = out.events_in.get(event.envelope.type, 0) + 1
        key = person_ref.encode()
        state = self._state(key, person_ref, batch.dirty)
        observation = Observation(event.envelope.id, event.envelope.type, record)
        try:
            new_state, decisions = on_event(state, observation, self._policy)
            when = next_due(new_state, self._policy)  # an unindexable state is refused too
        except Exception as error:
            log.exception("%s: deciding it failed", _where(message))
            out.dead_letters.append(_failed(message, error))
            return
        batch.changed(message.partition, key, new_state, when)
        out.decisions += decisions

    # --- clock ticks -------------------------------------------------------------------

    def _tick(self, message: KafkaRecord, batch: _Batch) -> None:
        out = batch.output
        try:
            tick = ClockTick.model_validate_json(message.value or b"")
        except ValidationError as invalid:
            reason = f"invalid clock tick: {invalid.errors()[0]['msg']}"
            out.dead_letters.append(_dead_letter(message, "undecodable", reason))
            return
        out.ticks += 1
        partition = message.partition
        meta = self._meta(partition)
        kind = tick_kind(tick, meta.last_tick, self._received_day(message))
        out.tick_kinds[kind] += 1
        if kind not in ("first", "next_day", "same_day"):
            log.warning(
                "partition %d: a %s tick for %s (the partition was at %s)",
                partition, kind, tick.as_of, meta.last_tick,
            )  # fmt: skip
        if kind == "reset":
            self._reset(message, tick.as_of, batch)
        elif kind != "backwards":  # ticks never go back: an earlier day decides nothing
            self._decide_due(message, tick.as_of, batch)
        if kind == "reset" or meta.last_tick is None or tick.as_of > meta.last_tick:
            meta.last_tick = tick.as_of
            batch.metas.add(partition)

    def _decide_due(self, message: KafkaRecord, as_of: dt.date, batch: _Batch) -> None:
        partition = message.partition
        due = self._due_in(partition, batch)
        for key in [k for k, when in due.items() if when <= as_of]:
            try:
                state = self._state(key, key.decode(), batch.dirty)
                new_state, decisions = on_tick(state, as_of, self._policy)
                when = next_due(new_state, self._policy)
            except Exception as error:
                log.exception("%s: tick %s for %s failed", _where(message), as_of, key.decode())
                batch.output.dead_letters.append(_failed(message, error, person=key))
                due.pop(key, None)  # not visited again until its state changes
                continue
            batch.dirty[key] = new_state
            batch.output.decisions += decisions
            self._index(partition, key, when)

    def _reset(self, message: KafkaRecord, as_of: dt.date, batch: _Batch) -> None:
        """Set the partition's clock back to ``as_of``: every person is visited."""
        partition = message.partition
        keys = {key for key, _ in self._stored_in(partition)}
        keys |= {k for k in batch.dirty if default_partition(k, self._partitions) == partition}
        for key in sorted(keys):
            try:
                state = self._state(key, key.decode(), batch.dirty)
                if not rules.affected_by_reset(state, as_of):
                    continue
                new_state, decisions = rules.on_reset(state, as_of, self._policy)
                when = next_due(new_state, self._policy)
            except Exception as error:
                log.exception("%s: reset to %s for %s failed", _where(message), as_of, key)
                batch.output.dead_letters.append(_failed(message, error, person=key))
                continue
            batch.changed(partition, key, new_state, when)
            batch.output.decisions += decisions

    # --- state, partitions, time -------------------------------------------------------

    def _meta(self, partition: int) -> PartitionMeta:
        meta = self._metas.get(partition)
        if meta is None:
            stored = self._store.get(meta_key(partition, self._partitions))
            meta = self._metas[partition] = PartitionMeta.from_bytes(stored)
        return meta

    def _appended_at(self, message: KafkaRecord) -> dt.datetime | None:
        stamp = getattr(message, "timestamp", None)
        if stamp is None:
            return None
        return dt.datetime.fromtimestamp(stamp / self._per_second, dt.UTC)

    def _received_day(self, message: KafkaRecord) -> dt.date | None:
        appended = self._appended_at(message)
        return None if appended is None else appended.astimezone(self._policy.zone).date()

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
                try:
                    when = next_due(PersonState.from_bytes(value), self._policy)
                except Exception:  # a state an older version stored, say: never due
                    log.exception("partition %d: cannot index %s", partition, key.decode())
                    continue
                if when is not None:
                    due[key] = when
            log.info("partition %d: %d persons due on some future tick", partition, len(due))
        for key, when in batch.unindexed.pop(partition, {}).items():
            self._index(partition, key, when)
        return due

    def _stored_in(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        for key, value in self._store.items():
            if key.startswith(RESERVED_PREFIX):
                continue
            if default_partition(key, self._partitions) == partition:
                yield key, value

    def _index(self, partition: int, key: bytes, when: dt.date | None) -> None:
        """Note that ``key`` is next due on ``when`` (None: on no tick)."""
        due = self._due.get(partition)
        if due is None:
            return  # built from the store when the first tick arrives
        if when is None:
            due.pop(key, None)
        else:
            due[key] = when

    def forget_partitions(self, partitions: Iterable[int]) -> None:
        """Drop what is kept in memory of revoked partitions (rebuilt if they come back)."""
        for partition in partitions:
            self._due.pop(partition, None)
            self._metas.pop(partition, None)


def _where(message: KafkaRecord) -> str:
    return f"{message.topic}[{message.partition}]@{message.offset}"


def _reason_of(error: Exception) -> str:
    return error.reason if isinstance(error, DecodeError) else str(error)


def _dead_letter(message: KafkaRecord, reason: str, text: str, field: str = "$") -> DeadLetter:
    """A dead letter for an input message the worker cannot use."""
    raw = (message.value or b"")[:RAW_KEPT].decode("utf-8", errors="replace")
    rejection = Rejection(
        dataset=message.topic,
        agency="databus-worker",
        raw=mask_id_like(raw),
        reasons=[Reason.of(field, mask_id_like(text), _KINDS.get(reason, "invalid"))],
        source=_where(message),
    )
    return DeadLetter(rejection, reason, message.partition)


def _refused(message: KafkaRecord, refusal: Refusal) -> DeadLetter:
    return _dead_letter(message, refusal.reason, refusal.message, refusal.field)


def _failed(message: KafkaRecord, error: Exception, *, person: bytes | None = None) -> DeadLetter:
    """A dead letter for a message whose handling raised ``error``."""
    about = f" for person {person.decode()}" if person is not None else ""
    text = f"processing failed{about}: {type(error).__name__}: {error}"
    return _dead_letter(message, "processing_error", text)
