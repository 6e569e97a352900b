"""The audit trail's hash chain: sealing records as they are written, verifying them later.

Per partition of ``audit.sharing.v1``, records are numbered from 0 (``seq``) and each
carries ``prev_hash`` (the previous record's ``hash``, or the partition's genesis) and
``hash = SHA-256(prev_hash + "\\n" + content)``, where content is the record without
the two hashes as JSON with sorted keys. Changing a record breaks its own hash;
deleting, inserting or reordering records breaks ``seq`` and ``prev_hash`` where it
happened, and :func:`verify_partition` names that first broken link. Deleting the
newest records leaves a shorter valid chain: compare the heads ``audit verify`` prints
with ones kept elsewhere to see that.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_GENESIS_PREFIX = b"databus audit.sharing.v1 partition "


def genesis(partition: int) -> str:
    """The ``prev_hash`` of a partition's first record (so chains cannot swap partitions)."""
    return hashlib.sha256(_GENESIS_PREFIX + str(partition).encode()).hexdigest()


def content_bytes(record: Mapping[str, Any]) -> bytes:
    """What the hash covers besides ``prev_hash``: every other field, canonically."""
    content = {k: v for k, v in record.items() if k not in ("prev_hash", "hash")}
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)


def link(prev_hash: str, record: Mapping[str, Any]) -> str:
    """The hash of a record that follows ``prev_hash``."""
    return hashlib.sha256(prev_hash.encode() + b"\n" + content_bytes(record)).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Where a partition's chain ends: the next record's ``seq`` and ``prev_hash``."""

    partition: int
    next_seq: int
    hash: str

    @classmethod
    def start(cls, partition: int) -> ChainHead:
        """An empty chain."""
        return cls(partition, 0, genesis(partition))

    @classmethod
    def after(cls, partition: int, value: bytes | None) -> ChainHead:
        """The head after the record ``value`` (the newest in the partition)."""
        record = _as_audit_record(value)
        if isinstance(record, str):
            raise ValueError(record)
        return cls(partition, record["seq"] + 1, record["hash"])

    def seal(self, content: Mapping[str, Any]) -> tuple[dict[str, Any], ChainHead]:
        """``content`` numbered and chained after this head, and the new head."""
        record = {**content, "seq": self.next_seq, "prev_hash": self.hash}
        record["hash"] = link(self.hash, record)
        return record, ChainHead(self.partition, self.next_seq + 1, record["hash"])


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """An audit record as read back: its position and bytes."""

    partition: int
    offset: int
    value: bytes | None


@dataclass(frozen=True, slots=True)
class BrokenLink:
    """The first place a partition's chain does not hold."""

    partition: int
    offset: int
    seq: int | None
    reason: str

    def __str__(self) -> str:
        seq = f" (seq {self.seq})" if self.seq is not None else ""
        return f"partition {self.partition}, offset {self.offset}{seq}: {self.reason}"


@dataclass(frozen=True, slots=True)
class PartitionReport:
    """What verifying one partition found."""

    partition: int
    records: int
    head: str
    """The hash of the last record that verified (the genesis if none)."""
    broken: BrokenLink | None = None
    anchored_at: int | None = None
    """The first record's offset when older records were deleted by retention (the
    chain is then checked from that record's ``prev_hash`` on)."""


def verify_partition(
    partition: int, records: Sequence[StoredRecord], *, truncated: bool = False
) -> PartitionReport:
    """Recompute one partition's chain in offset order; stop at the first broken link.

    ``truncated``: the partition's log no longer starts at offset 0, so the first
    record is taken as the anchor instead of the genesis.
    """
    head = ChainHead.start(partition)
    anchored_at = None
    seen: dict[int, int] = {}
    for index, stored in enumerate(records):
        record = _as_audit_record(stored.value)
        if isinstance(record, str):
            return _broken(index, head, stored, None, record, anchored_at=anchored_at)
        seq = record["seq"]
        if index == 0 and truncated and seq > 0:
            head = ChainHead(partition, seq, record["prev_hash"])
            anchored_at = stored.offset
        if seq != head.next_seq:
            reason = _misplaced(seq, head.next_seq, records[index + 1 :], seen)
            return _broken(index, head, stored, seq, reason, anchored_at=anchored_at)
        if record["prev_hash"] != head.hash:
            reason = (
                "does not link to the record before it (its prev_hash is not that record's "
                "hash): the record before it was replaced, or this one inserted"
            )
            return _broken(index, head, stored, seq, reason, anchored_at=anchored_at)
        if link(record["prev_hash"], record) != record["hash"]:
            reason = "its content does not match its hash: the record was altered"
            return _broken(index, head, stored, seq, reason, anchored_at=anchored_at)
        seen[seq] = stored.offset
        head = ChainHead(partition, seq + 1, record["hash"])
    return PartitionReport(partition, len(records), head.hash, None, anchored_at)


def _broken(
    verified: int,
    head: ChainHead,
    stored: StoredRecord,
    seq: int | None,
    reason: str,
    *,
    anchored_at: int | None,
) -> PartitionReport:
    broken = BrokenLink(head.partition, stored.offset, seq, reason)
    return PartitionReport(head.partition, verified, head.hash, broken, anchored_at)


def _misplaced(
    seq: int, expected: int, rest: Sequence[StoredRecord], seen: Mapping[int, int]
) -> str:
    """Why ``seq`` is not the expected one: moved, deleted or repeated."""
    if seq < expected:
        where = f" (already at offset {seen[seq]})" if seq in seen else ""
        return f"seq {seq} where {expected} was expected{where}: a record was repeated or moved"
    for later in rest:
        record = _as_audit_record(later.value)
        if not isinstance(record, str) and record["seq"] == expected:
            return (
                f"seq {seq} where {expected} was expected; seq {expected} is later, at "
                f"offset {later.offset}: records were reordered"
            )
    missing = seq - expected
    numbers = f"seq {expected}" if missing == 1 else f"seq {expected} to {seq - 1}"
    return f"{numbers} missing: {missing} record{'s' if missing > 1 else ''} deleted before it"


def _as_audit_record(value: bytes | None) -> dict[str, Any] | str:
    """The record as a dict with a usable seq and hashes, or why it is not one."""
    try:
        record = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return "not an audit record (not JSON)"
    if not isinstance(record, dict):
        return "not an audit record (not a JSON object)"
    seq, prev, own = record.get("seq"), record.get("prev_hash"), record.get("hash")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        return "not an audit record (no seq)"
    if not isinstance(prev, str) or not _HEX64.match(prev):
        return "not an audit record (no prev_hash)"
    if not isinstance(own, str) or not _HEX64.match(own):
        return "not an audit record (no hash)"
    return record
