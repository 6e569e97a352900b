"""Reading the audit trail back from Kafka and checking it: every partition's chain,
the heads of signed checkpoints, the topic's retention, and (the cross-check) the share
and source topics its records describe.

Only committed records count (``read_committed``): a batch the share worker aborted
shared nothing and is no part of the chain.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, for_code

from databus.catalog import AUDIT, CATALOG
from databus.errors import AuditReadError, MissingTopicError
from databus.governance.chain import (
    ExpectedHead,
    ForeignRecord,
    PartitionReport,
    StoredRecord,
    verify_partition,
)
from databus.governance.crosscheck import (
    CrossCheck,
    ShareLog,
    ShareMessage,
    SourceLog,
    claims_of,
    cross_check,
    needed_sources,
)
from databus.governance.grants import SHARE_PREFIX
from databus.internals import kafka_client
from databus.settings import Settings

_FETCH_TIMEOUT_MS = 1000
_IDLE_LIMIT_S = 60.0
#: Topic configs that let Kafka remove records (-1: never).
_EXPIRY_CONFIGS = ("retention.ms", "retention.bytes")


@dataclass(frozen=True, slots=True)
class PartitionLog:
    """One partition as read: its committed records and where its log starts now."""

    records: list[StoredRecord]
    log_start: int


@dataclass(slots=True)
class AuditReport:
    """Everything ``audit verify`` found."""

    topic: str
    partitions: list[PartitionReport]
    retention: str = ""
    """The topic's retention as configured, when it mattered (a log no longer at 0)."""
    cross: CrossCheck | None = None
    share_topics: int = 0
    source_partitions: int = 0
    missing_partitions: list[int] = field(default_factory=list)
    """Checkpointed partitions the topic no longer has."""
    known_foreign: frozenset[tuple[int, int]] = frozenset()
    """(partition, offset) of foreign records a signed checkpoint already lists."""

    def new_foreign(self) -> list[ForeignRecord]:
        """Foreign records no checkpoint lists."""
        return [
            record
            for report in self.partitions
            for record in report.foreign
            if (record.partition, record.offset) not in self.known_foreign
        ]

    @property
    def chains_hold(self) -> bool:
        """No broken link, no deleted records, every checkpointed head in place."""
        return not self.missing_partitions and all(
            report.broken is None and not report.findings for report in self.partitions
        )

    @property
    def intact(self) -> bool:
        """Nothing found at all (foreign records a checkpoint lists aside)."""
        crossed = self.cross is None or not self.cross.mismatches
        return self.chains_hold and crossed and not self.new_foreign()


def _consumer(settings: Settings, suffix: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **settings.kafka_client_options(),
        client_id=f"{settings.client_id}-{suffix}",
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        # Not "latest": a reset racing with our seek to the beginning must not skip records.
        auto_offset_reset="earliest",
    )


async def _partitions_of(consumer: AIOKafkaConsumer, topic: str, settings: Settings) -> list[int]:
    cluster = await kafka_client(consumer).fetch_all_metadata()
    numbers = cluster.partitions_for_topic(topic)
    if not numbers:
        raise MissingTopicError(
            f"topic {topic} does not exist on {settings.bootstrap_servers}, or "
            f"{settings.principal()} may not read it"
        )
    return sorted(numbers)


async def read_partitions(settings: Settings, topic: str) -> dict[int, PartitionLog]:
    """Every committed record of every partition of ``topic``, in offset order, with
    each partition's log start (above 0 once records before it were removed)."""
    consumer = _consumer(settings, "audit")
    await consumer.start()
    try:
        numbers = await _partitions_of(consumer, topic, settings)
        partitions = [TopicPartition(topic, p) for p in numbers]
        starts = await consumer.beginning_offsets(partitions)
        read: dict[int, list[StoredRecord]] = {tp.partition: [] for tp in partitions}

        def keep(tp: TopicPartition, message: Any) -> None:
            read[tp.partition].append(
                StoredRecord(tp.partition, message.offset, message.value, message.timestamp)
            )

        await _read(consumer, dict.fromkeys(partitions, None), keep, settings)
        return {tp.partition: PartitionLog(read[tp.partition], starts[tp]) for tp in partitions}
    finally:
        await consumer.stop()


async def _read(
    consumer: AIOKafkaConsumer,
    first: Mapping[TopicPartition, int | None],
    keep: Callable[[TopicPartition, Any], None],
    settings: Settings,
    *,
    last: Mapping[TopicPartition, int] | None = None,
) -> None:
    """Hand every committed message of each partition, from its ``first`` offset (None:
    the beginning) up to the end (or ``last``, included), to ``keep``."""
    partitions = list(first)
    consumer.assign(partitions)
    ends = await consumer.end_offsets(partitions)
    if last is not None:
        ends = {tp: min(end, last[tp] + 1) for tp, end in ends.items()}
    await _seek(consumer, first)
    loop = asyncio.get_running_loop()
    last_progress = loop.time()
    pending = {tp for tp in partitions if ends[tp] > (first[tp] or 0)}
    while pending:
        try:
            fetched = await consumer.getmany(*pending, timeout_ms=_FETCH_TIMEOUT_MS)
        except KafkaError as failed:
            topics = sorted({tp.topic for tp in pending})
            raise AuditReadError(
                f"cannot read {', '.join(topics)} as {settings.principal()}: {failed}"
            ) from None
        for tp, messages in fetched.items():
            for message in messages:
                if message.offset < ends[tp]:
                    keep(tp, message)
        for tp in list(pending):
            if await consumer.position(tp) >= ends[tp]:
                pending.discard(tp)
        if fetched:
            last_progress = loop.time()
        elif loop.time() - last_progress > _IDLE_LIMIT_S:
            raise TimeoutError(f"no progress reading {sorted(pending)}")


async def _seek(consumer: AIOKafkaConsumer, first: Mapping[TopicPartition, int | None]) -> None:
    for tp, offset in first.items():
        if offset is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, offset)


async def retention_of(settings: Settings, topic: str) -> dict[str, int]:
    """The settings that make Kafka remove ``topic``'s records (retention.ms/bytes)."""
    admin = AIOKafkaAdminClient(
        **settings.kafka_client_options(), client_id=f"{settings.client_id}-audit"
    )
    await admin.start()
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, topic)
        responses = await admin.describe_configs([resource])
    finally:
        await admin.close()
    found: dict[str, int] = {}
    for response in responses:
        for error_code, error_message, _type, _name, entries, *_ in response.resources:
            if error_code:
                reason = error_message or for_code(error_code).__name__
                raise AuditReadError(
                    f"cannot read the retention of {topic} as {settings.principal()} "
                    f"({reason}): it decides whether records before the log start were "
                    "deleted or expired"
                )
            found |= {e[0]: int(e[1]) for e in entries if e[0] in _EXPIRY_CONFIGS}
    return found


def verify(
    partitions: Mapping[int, PartitionLog],
    *,
    expires: bool = False,
    expect: Sequence[ExpectedHead] = (),
) -> list[PartitionReport]:
    """Verify each partition's chain (see :func:`verify_partition`); reports in
    partition order."""
    return [
        verify_partition(
            number, log.records, log_start=log.log_start, expires=expires, expect=expect
        )
        for number, log in sorted(partitions.items())
    ]


async def audit_topic(
    settings: Settings,
    topic: str = AUDIT.topic,
    *,
    expect: Sequence[ExpectedHead] = (),
    known_foreign: Iterable[tuple[int, int]] = (),
    cross: bool = True,
) -> AuditReport:
    """Read and check an audit topic (``audit.sharing.v1``, or a copy of it)."""
    partitions = await read_partitions(settings, topic)
    retention = ""
    expires = False
    if any(log.log_start > 0 for log in partitions.values()):
        limits = await retention_of(settings, topic)
        expires = any(value >= 0 for value in limits.values())
        retention = ", ".join(f"{name}={value}" for name, value in sorted(limits.items()))
    report = AuditReport(topic, verify(partitions, expires=expires, expect=expect), retention)
    report.missing_partitions = sorted({h.partition for h in expect} - set(partitions))
    report.known_foreign = frozenset(known_foreign)
    if cross:
        await _cross_check(settings, report, partitions)
    return report


async def _cross_check(
    settings: Settings, report: AuditReport, partitions: Mapping[int, PartitionLog]
) -> None:
    claims, invalid = claims_of({p: log.records for p, log in partitions.items()})
    consumer = _consumer(settings, "audit-cross-check")
    await consumer.start()
    try:
        shares = await _read_shares(consumer, settings)
        if claims and not shares:
            raise AuditReadError(
                f"cannot cross-check: {settings.principal()} sees no share topic (verify as "
                "the auditor, or with --no-cross-check)"
            )
        needed = needed_sources(claims)
        sources = await _read_sources(consumer, settings, needed)
    finally:
        await consumer.stop()
    result = cross_check(claims, shares, sources)
    result.mismatches = sorted([*invalid, *result.mismatches], key=str)
    report.cross = result
    report.share_topics = len({topic for topic, _ in shares})
    report.source_partitions = len(sources)


async def _read_shares(
    consumer: AIOKafkaConsumer, settings: Settings
) -> dict[tuple[str, int], ShareLog]:
    """Every partition of every share topic: ce_id, fields and timestamp of each message."""
    cluster = await kafka_client(consumer).fetch_all_metadata()
    partitions = [
        TopicPartition(topic, number)
        for topic in sorted(cluster.topics())
        if topic.startswith(SHARE_PREFIX)
        for number in sorted(cluster.partitions_for_topic(topic) or ())
    ]
    if not partitions:
        return {}
    starts = await consumer.beginning_offsets(partitions)
    messages: dict[TopicPartition, list[ShareMessage]] = {tp: [] for tp in partitions}

    def keep(tp: TopicPartition, message: Any) -> None:
        ce_id = dict(message.headers or ()).get("ce_id", b"").decode(errors="replace")
        try:
            value = orjson.loads(message.value or b"")
        except orjson.JSONDecodeError:
            value = None
        fields = tuple(value) if isinstance(value, dict) else ()
        messages[tp].append(ShareMessage(message.offset, ce_id, fields, message.timestamp))

    await _read(consumer, dict.fromkeys(partitions, None), keep, settings)
    return {(tp.topic, tp.partition): ShareLog(starts[tp], messages[tp]) for tp in partitions}


async def _read_sources(
    consumer: AIOKafkaConsumer,
    settings: Settings,
    needed: Mapping[tuple[str, int], Iterable[int]],
) -> dict[tuple[str, int], SourceLog]:
    """The ce_id at each needed offset of the source partitions (only that range read)."""
    cluster = await kafka_client(consumer).fetch_all_metadata()
    unseen = sorted({t for t, _ in needed if t in CATALOG and t not in cluster.topics()})
    if unseen:
        raise AuditReadError(
            f"cannot cross-check against {', '.join(unseen)}: not visible to "
            f"{settings.principal()} (run `databus topics apply`, or verify as the auditor)"
        )
    wanted = {
        TopicPartition(topic, partition): sorted(offsets)
        for (topic, partition), offsets in needed.items()
        if partition in (cluster.partitions_for_topic(topic) or ())
    }
    if not wanted:
        return {}
    starts = await consumer.beginning_offsets(list(wanted))
    ce_ids: dict[TopicPartition, dict[int, str]] = {tp: {} for tp in wanted}
    targets = {tp: set(offsets) for tp, offsets in wanted.items()}

    def keep(tp: TopicPartition, message: Any) -> None:
        if message.offset in targets[tp]:
            ce_id = dict(message.headers or ()).get("ce_id", b"")
            ce_ids[tp][message.offset] = ce_id.decode(errors="replace")

    first = {tp: max(offsets[0], starts[tp]) for tp, offsets in wanted.items()}
    last = {tp: offsets[-1] for tp, offsets in wanted.items()}
    await _read(consumer, first, keep, settings, last=last)
    return {(tp.topic, tp.partition): SourceLog(starts[tp], ce_ids[tp]) for tp in wanted}
