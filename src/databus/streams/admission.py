"""What a decoded record must satisfy before the rules see it, and each partition's own
small state (its clock and the pseudonym key it uses).

The record models check what a record says about itself; here the worker checks what
only the bus knows: that the record sits in the partition its key hashes to (a raw
client can write any key, or none, to any partition), that its ``person_ref`` was made
with the pseudonym key this partition uses (``ce_keyid``), and that it is not dated
after the broker appended it (the topics' ``LogAppendTime``; a demo broker allows
simulated future days). A record that fails is dead-lettered with the reason.

:class:`PartitionMeta` is kept in the state store under a reserved key of its partition
(so it moves with the partition and is rebuilt from the changelog like any person).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Final

import orjson

from databus.identity import pseudonym_key_id
from databus.partitioner import default_partition
from databus.records.base import FUTURE_SKEW, Record
from databus.settings import DEMO_PSEUDONYM_KEY

#: Reserved store keys start with a NUL byte; a person_ref never does.
RESERVED_PREFIX: Final = b"\x00"
_META_KEY_PREFIX: Final = b"\x00databus-partition-"


DEMO_KEY_ID: Final = pseudonym_key_id(DEMO_PSEUDONYM_KEY.encode())


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a record may not reach the rules: a metric reason, the field, a message."""

    reason: str
    field: str
    message: str


@cache
def meta_key(partition: int, partitions: int) -> bytes:
    """The reserved store key of ``partition``'s meta: the first one that hashes to it."""
    suffix = 0
    while True:
        key = _META_KEY_PREFIX + str(suffix).encode()
        if default_partition(key, partitions) == partition:
            return key
        suffix += 1


@dataclass(slots=True)
class PartitionMeta:
    """What the worker remembers of one partition besides its persons."""

    last_tick: dt.date | None = None
    """The latest day ticked (or the day a reset set the clock back to)."""
    key_id: str | None = None
    """The pseudonym key id of the first accepted record with one; others are refused."""

    def to_bytes(self) -> bytes:
        last = None if self.last_tick is None else self.last_tick.toordinal()
        return orjson.dumps({"last_tick": last, "key_id": self.key_id})

    @classmethod
    def from_bytes(cls, data: bytes | None) -> PartitionMeta:
        if not data:
            return cls()
        parts = orjson.loads(data)
        last = parts.get("last_tick")
        return cls(None if last is None else dt.date.fromordinal(last), parts.get("key_id"))


def check_record(
    *,
    key: bytes | None,
    person_ref: str,
    partition: int,
    partitions: int,
    key_id: str | None,
    meta: PartitionMeta,
    record: Record,
    appended_at: dt.datetime | None,
    demo_broker: bool,
) -> Refusal | None:
    """The first reason ``record`` may not be decided, or None. An accepted record that
    names a key id pins it for the partition, if none was pinned yet."""
    if key != person_ref.encode():
        return Refusal("wrong_partition", "$", "the message key is not the record's person_ref")
    home = default_partition(key, partitions)
    if home != partition:
        return Refusal(
            "wrong_partition",
            "$",
            f"its key belongs to partition {home}, not {partition}: it would be decided "
            "out of order with the person's other records",
        )
    if key_id is not None:
        if key_id == DEMO_KEY_ID and not demo_broker:
            return Refusal(
                "pseudonym_key", "$", "made with the public demo pseudonym key on a real bus"
            )
        if meta.key_id is not None and key_id != meta.key_id:
            return Refusal(
                "pseudonym_key",
                "$",
                f"made with pseudonym key {key_id}, but this bus uses {meta.key_id}: its "
                "person_ref would be another person",
            )
    late = appended_at is not None and record.occurred_at > appended_at + FUTURE_SKEW
    if late and not demo_broker:
        minutes = int(FUTURE_SKEW.total_seconds() // 60)
        return Refusal(
            "future_dated",
            "occurred_at",
            f"is later than the broker received the record (plus {minutes} minutes): a "
            "record cannot be dated in the future",
        )
    if key_id is not None and meta.key_id is None:
        meta.key_id = key_id
    return None
