"""The audit trail's hash chain: sealing records as they are written, verifying them later.

Per partition of ``audit.sharing.v1``, records are numbered from 0 (``seq``) and each
carries ``prev_hash`` (the previous record's ``hash``, or the partition's genesis) and
``hash = SHA-256(prev_hash + "\\n" + content)``, where content is the record without
the two hashes as JSON with sorted keys. Changing a record breaks its own hash;
deleting, inserting or reordering records breaks ``seq`` and ``prev_hash`` where it
happened, and :func:`verify_partition` names that first broken link.

What a chain cannot show by itself — its newest records deleted, its start deleted,
the whole topic rebuilt from the (public) genesis, or a correctly chained record
appended by whoever can write the topic — is caught elsewhere: by the heads of signed
checkpoints (:mod:`databus.governance.checkpoint`, checked here as ``expect``), by the
topic's retention (a log that no longer starts at 0 although records never expire),
and by the cross-check against the share topics (:mod:`databus.governance.crosscheck`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
    """An audit record as read back: its position, bytes and Kafka timestamp (ms)."""

    partition: int
    offset: int
    value: bytes | None
    timestamp: int | None = None


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
class ForeignRecord:
    """A record in the audit topic that is not an audit record: no part of the chain,
    skipped by it, and reported (only the share worker should write the topic)."""

    partition: int
    offset: int
    why: str

    def __str__(self) -> str:
        return f"partition {self.partition}, offset {self.offset}: {self.why}"


@dataclass(frozen=True, slots=True)
class ExpectedHead:
    """A chain position a signed checkpoint vouches for: record ``seq`` had ``hash``
    and was at ``offset``."""

    partition: int
    seq: int
    hash: str
    offset: int


@dataclass(frozen=True, slots=True)
class Finding:
    """Something verifying found that is not a broken link: deleted records, or a
    checkpointed head that is no longer in the chain at its place."""

    partition: int
    reason: str

    def __str__(self) -> str:
        return f"partition {self.partition}: {self.reason}"


@dataclass(frozen=True, slots=True)
class PartitionReport:
    """What verifying one partition found."""

    partition: int
    records: int
    """Chain records verified (foreign records not counted)."""
    head: str
    """The hash of the last record that verified (the genesis if none)."""
    broken: BrokenLink | None = None
    anchored_at: int | None = None
    """The first record's offset when older records are gone (the chain is then
    checked from that record's ``prev_hash`` on)."""
    head_seq: int | None = None
    """``seq`` of the last record that verified (None: none did)."""
    head_offset: int | None = None
    foreign: tuple[ForeignRecord, ...] = ()
    findings: tuple[Finding, ...] = ()
    """Records deleted although the topic keeps them, checkpoints not matched."""
    confirmed: int = 0
    """Checkpointed heads found in the chain at their place."""

    @property
    def intact(self) -> bool:
        """No broken link, no foreign record, no other finding."""
        return self.broken is None and not self.foreign and not self.findings


@dataclass(slots=True)
class _Walk:
    """The state of one pass over a partition's records."""

    partition: int
    head: ChainHead
    verified: int = 0
    anchored_at: int | None = None
    head_offset: int | None = None
    foreign: list[ForeignRecord] = field(default_factory=list)
    seen: dict[int, int] = field(default_factory=dict)

    def report(
        self, broken: BrokenLink | None, findings: list[Finding], confirmed: int
    ) -> PartitionReport:
        return PartitionReport(
            self.partition,
            self.verified,
            self.head.hash,
            broken,
            self.anchored_at,
            self.head.next_seq - 1 if self.head_offset is not None else None,
            self.head_offset,
            tuple(self.foreign),
            tuple(findings),
            confirmed,
        )


def verify_partition(
    partition: int,
    records: Sequence[StoredRecord],
    *,
    log_start: int = 0,
    expires: bool = False,
    expect: Sequence[ExpectedHead] = (),
) -> PartitionReport:
    """Recompute one partition's chain in offset order, to the first broken link.

    Records that are not audit records are listed as foreign and skipped. ``log_start``:
    the partition's log no longer starts at offset 0, so the first record is the anchor
    instead of the genesis; unless the topic's retention lets records ``expire`` that
    is itself a finding (someone deleted them). ``expect``: heads of signed checkpoints,
    each of which must still be in the chain, with its hash, at its offset.
    """
    walk = _Walk(partition, ChainHead.start(partition))
    expected = {head.seq: head for head in expect if head.partition == partition}
    findings: list[Finding] = []
    confirmed = 0
    if log_start > 0 and not expires:
        findings.append(
            Finding(
                partition,
                f"records before offset {log_start} were deleted (the topic keeps its "
                "records forever: retention did not remove them)",
            )
        )
    broken = None
    for index, stored in enumerate(records):
        record = _as_audit_record(stored.value)
        if isinstance(record, str):
            walk.foreign.append(ForeignRecord(partition, stored.offset, record))
            continue
        seq = record["seq"]
        if walk.head_offset is None and walk.anchored_at is None and log_start > 0 and seq > 0:
            walk.head = ChainHead(partition, seq, record["prev_hash"])
            walk.anchored_at = stored.offset
        broken = _check_link(walk, stored, record, records[index + 1 :])
        if broken is not None:
            break
        walk.seen[seq] = stored.offset
        walk.head = ChainHead(partition, seq + 1, record["hash"])
        walk.head_offset = stored.offset
        walk.verified += 1
        mark = expected.pop(seq, None)
        if mark is not None:
            mismatch = _against_checkpoint(mark, stored.offset, record["hash"])
            if mismatch is None:
                confirmed += 1
            else:
                findings.append(Finding(partition, mismatch))
    findings += [_unreached(mark, walk, broken) for _, mark in sorted(expected.items())]
    return walk.report(broken, findings, confirmed)


def _check_link(
    walk: _Walk, stored: StoredRecord, record: Mapping[str, Any], rest: Sequence[StoredRecord]
) -> BrokenLink | None:
    seq = record["seq"]
    reason = None
    if seq != walk.head.next_seq:
        reason = _misplaced(seq, walk.head.next_seq, rest, walk.seen)
    elif record["prev_hash"] != walk.head.hash:
        reason = (
            "does not link to the record before it (its prev_hash is not that record's "
            "hash): the record before it was replaced, or this one inserted"
        )
    elif link(record["prev_hash"], record) != record["hash"]:
        reason = "its content does not match its hash: the record was altered"
    return None if reason is None else BrokenLink(walk.partition, stored.offset, seq, reason)


def _against_checkpoint(mark: ExpectedHead, offset: int, found: str) -> str | None:
    """Why the record at ``mark.seq`` is not the checkpointed one (None: it is)."""
    if found != mark.hash:
        return (
            f"seq {mark.seq} has hash {found[:16]}…, the checkpoint says {mark.hash[:16]}…: "
            "checkpointed history was rewritten"
        )
    if offset != mark.offset:
        return (
            f"seq {mark.seq} is at offset {offset}, the checkpoint saw it at offset "
            f"{mark.offset}: the topic was rebuilt"
        )
    return None


def _unreached(mark: ExpectedHead, walk: _Walk, broken: BrokenLink | None) -> Finding:
    """Why a checkpointed head was never met in the chain."""
    where = f"checkpointed seq {mark.seq} (offset {mark.offset})"
    if broken is not None:
        reason = f"{where} not reached: the chain breaks before it"
    elif walk.anchored_at is not None and walk.head.next_seq - walk.verified > mark.seq:
        reason = (
            f"{where} is gone: the chain now starts at offset {walk.anchored_at}, "
            "records before it were deleted"
        )
    elif walk.head_offset is None:
        reason = f"{where} is gone: the partition holds no audit record (deleted or rebuilt)"
    else:
        reason = (
            f"{where} is gone: the chain ends at seq {walk.head.next_seq - 1} (offset "
            f"{walk.head_offset}): records were deleted from its end, or the topic was rebuilt"
        )
    return Finding(mark.partition, reason)


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


def why_foreign(value: bytes | None) -> str | None:
    """Why ``value`` is not an audit chain record (None: it is one)."""
    record = _as_audit_record(value)
    return record if isinstance(record, str) else None


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
