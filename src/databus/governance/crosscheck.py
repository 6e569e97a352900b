"""The audit trail checked against what it describes: shares and their sources.

A chain proves that records were not changed after they were written, not that they
are true: whoever may write ``audit.sharing.v1`` can append a correctly chained record
of a share that never happened (or hide a share by writing none). So each audit
record's claims are checked against the topics:

* its share: the share topic's partition (the audit record's own: a partition is
  written by one worker, in one transaction with its audit records) holds a message
  with the source's ``ce_id`` and exactly the audited fields;
* its source: the source topic's partition holds, at ``source_offset``, a message with
  that ``ce_id``;
* and the other way: every message of a share topic has its audit record.

Retention makes some claims uncheckable, never false: a source offset before the
source's log start, or a share older than the share topic's oldest retained message
(share topics keep 30 days). Those are counted, not reported. Kafka-free: the I/O is in
:mod:`databus.governance.audit_log`.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from databus.governance.chain import StoredRecord, why_foreign
from databus.governance.grants import share_topic
from databus.records.audit import SharingAudit

TopicPartitionKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Claim:
    """What one audit record says was shared."""

    partition: int
    offset: int
    seq: int
    timestamp: int | None
    record: SharingAudit


@dataclass(frozen=True, slots=True)
class Mismatch:
    """An audit record (or a share) that the topics contradict."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ShareMessage:
    """A share as read back: offset, ``ce_id``, field names, Kafka timestamp (ms)."""

    offset: int
    ce_id: str
    fields: tuple[str, ...]
    timestamp: int


@dataclass(frozen=True, slots=True)
class ShareLog:
    """One partition of a share topic: where its log starts now, and its messages."""

    log_start: int
    messages: Sequence[ShareMessage]


@dataclass(frozen=True, slots=True)
class SourceLog:
    """One partition of a source topic: its log start and the ``ce_id`` by offset of
    the offsets that audit records name."""

    log_start: int
    ce_ids: Mapping[int, str]


@dataclass(slots=True)
class CrossCheck:
    """What the cross-check found."""

    checked: int = 0
    """Audit records whose share and source were both found as claimed."""
    uncheckable: int = 0
    """Audit records whose share or source retention has removed."""
    mismatches: list[Mismatch] = field(default_factory=list)


def claims_of(
    records_by_partition: Mapping[int, Sequence[StoredRecord]],
) -> tuple[list[Claim], list[Mismatch]]:
    """The claims of every chain record; those that are not sharing audit records (but
    chained) are mismatches. Foreign records are the chain's to report."""
    claims, invalid = [], []
    for partition, records in sorted(records_by_partition.items()):
        for stored in records:
            if why_foreign(stored.value) is not None:
                continue
            where = f"audit.sharing.v1[{partition}]@{stored.offset}"
            try:
                record = SharingAudit.model_validate_json(stored.value or b"")
            except ValidationError as error:
                fields = ", ".join(
                    ".".join(str(p) for p in e["loc"]) or "$" for e in error.errors()
                )
                invalid.append(Mismatch(where, f"not a sharing audit record ({fields})"))
                continue
            claims.append(Claim(partition, stored.offset, record.seq, stored.timestamp, record))
    return claims, invalid


def needed_sources(claims: Iterable[Claim]) -> dict[TopicPartitionKey, set[int]]:
    """The source offsets the claims name, per (topic, partition)."""
    needed: dict[TopicPartitionKey, set[int]] = defaultdict(set)
    for claim in claims:
        needed[(claim.record.dataset, claim.partition)].add(claim.record.source_offset)
    return dict(needed)


def cross_check(
    claims: Sequence[Claim],
    shares: Mapping[TopicPartitionKey, ShareLog],
    sources: Mapping[TopicPartitionKey, SourceLog],
) -> CrossCheck:
    """Check every claim against ``shares`` (every partition of every share topic) and
    ``sources`` (the partitions :func:`needed_sources` names)."""
    result = CrossCheck()
    by_share: dict[TopicPartitionKey, list[Claim]] = defaultdict(list)
    for claim in sorted(claims, key=lambda c: (c.partition, c.offset)):
        record = claim.record
        expected_topic = share_topic(record.consumer, record.dataset)
        if record.share_topic != expected_topic:
            result.mismatches.append(
                Mismatch(
                    _where(claim),
                    f"share_topic {record.share_topic} is not {expected_topic}, the topic of "
                    f"{record.consumer}'s view of {record.dataset}",
                )
            )
            continue
        by_share[(record.share_topic, claim.partition)].append(claim)
    share_ok: set[tuple[int, int]] = set()
    share_uncheckable: set[tuple[int, int]] = set()
    for key in sorted(set(by_share) | set(shares)):
        ok, uncheckable, mismatches = _check_shares(key, by_share.get(key, []), shares.get(key))
        share_ok |= ok
        share_uncheckable |= uncheckable
        result.mismatches += mismatches
    for claim in claims:
        position = (claim.partition, claim.offset)
        if position not in share_ok and position not in share_uncheckable:
            continue
        source = _check_source(claim, sources.get((claim.record.dataset, claim.partition)))
        if isinstance(source, Mismatch):
            result.mismatches.append(source)
        elif source and position in share_ok:
            result.checked += 1
        else:
            result.uncheckable += 1
    result.mismatches.sort(key=str)
    return result


def _where(claim: Claim) -> str:
    return f"audit.sharing.v1[{claim.partition}]@{claim.offset} (seq {claim.seq})"


def _check_shares(
    key: TopicPartitionKey, claims: list[Claim], log: ShareLog | None
) -> tuple[set[tuple[int, int]], set[tuple[int, int]], list[Mismatch]]:
    """Match a share partition's claims (in chain order) with its messages."""
    topic, partition = key
    ok: set[tuple[int, int]] = set()
    uncheckable: set[tuple[int, int]] = set()
    mismatches: list[Mismatch] = []
    if log is None:
        mismatches += [
            Mismatch(_where(c), f"{topic}[{partition}] does not exist: nothing was shared there")
            for c in claims
        ]
        return ok, uncheckable, mismatches
    waiting: dict[str, deque[ShareMessage]] = defaultdict(deque)
    for message in log.messages:
        waiting[message.ce_id].append(message)
    oldest = log.messages[0].timestamp if log.messages else None
    found_any = False
    for claim in claims:
        record = claim.record
        queue = waiting.get(record.source_event_id)
        if queue:
            message = queue.popleft()
            found_any = True
            if list(message.fields) != list(record.fields):
                mismatches.append(
                    Mismatch(
                        _where(claim),
                        f"the share at {topic}[{partition}]@{message.offset} holds fields "
                        f"{list(message.fields)}, the audit record says {list(record.fields)}",
                    )
                )
            else:
                ok.add((claim.partition, claim.offset))
            continue
        expired = (
            log.log_start > 0
            and not found_any
            and (oldest is None or claim.timestamp is None or claim.timestamp < oldest)
        )
        if expired:
            uncheckable.add((claim.partition, claim.offset))
            continue
        mismatches.append(
            Mismatch(
                _where(claim),
                f"no share of {record.source_event_id} in {topic}[{partition}]: the audit "
                "record has no share behind it (a forged record?)",
            )
        )
    mismatches += [
        Mismatch(
            f"{topic}[{partition}]@{message.offset}",
            f"the share of {message.ce_id} has no audit record",
        )
        for queue in waiting.values()
        for message in queue
    ]
    return ok, uncheckable, mismatches


def _check_source(claim: Claim, log: SourceLog | None) -> bool | Mismatch:
    """True: the source is there as claimed; False: retention removed it."""
    record = claim.record
    where = f"{record.dataset}[{claim.partition}]@{record.source_offset}"
    if log is None:
        return Mismatch(_where(claim), f"{record.dataset}[{claim.partition}] does not exist")
    if record.source_offset < log.log_start:
        return False
    found = log.ce_ids.get(record.source_offset)
    if found is None:
        return Mismatch(_where(claim), f"no source record at {where}: the audit record names none")
    if found != record.source_event_id:
        return Mismatch(
            _where(claim),
            f"the source record at {where} is {found}, not {record.source_event_id}",
        )
    return True
