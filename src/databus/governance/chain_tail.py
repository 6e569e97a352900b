"""The newest committed record of an audit partition: where the share worker continues
its chain when it takes a partition over.

Records that are not audit records (written by whoever else can write the topic) are
skipped and handed back, to be reported; they never stop sharing. Transaction markers
and aborted batches take offsets but hold no record, so the window read back from the
end widens until it holds a chain record, or reaches the start.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition

from databus.catalog import AUDIT
from databus.errors import AuditChainError
from databus.governance.chain import ChainHead, StoredRecord, why_foreign

_FETCH_TIMEOUT_MS = 500
_TAIL_WINDOW = 32
_READ_TIMEOUT_S = 60.0


@dataclass(slots=True)
class Tail:
    """The head to continue from, and the foreign records met after the last audit
    record (oldest first), each with why it is not one."""

    head: ChainHead
    foreign: list[tuple[StoredRecord, str]] = field(default_factory=list)


def tail_of(partition: int, records: list[StoredRecord]) -> Tail | None:
    """The tail in records read from the end of a partition (oldest first); None if
    they hold no audit record."""
    foreign: list[tuple[StoredRecord, str]] = []
    for stored in reversed(records):
        why = why_foreign(stored.value)
        if why is None:
            foreign.reverse()
            return Tail(ChainHead.after(partition, stored.value), foreign)
        foreign.append((stored, why))
    return None


async def read_tail(reader: AIOKafkaConsumer, partition: int) -> Tail:
    """The tail of ``audit.sharing.v1[partition]`` as committed now."""
    tp = TopicPartition(AUDIT.topic, partition)
    reader.assign([tp])
    start = (await reader.beginning_offsets([tp]))[tp]
    end = (await reader.end_offsets([tp]))[tp]
    window = _TAIL_WINDOW
    records: list[StoredRecord] = []
    while end > start:
        begin = max(start, end - window)
        reader.seek(tp, begin)
        records = await _read_to(reader, tp, end)
        tail = tail_of(partition, records)
        if tail is not None:
            return tail
        if begin == start:
            break
        window *= 8  # only markers, aborted batches or foreign records so far
    foreign = [(stored, why_foreign(stored.value) or "") for stored in records]
    return Tail(ChainHead.start(partition), foreign)


async def _read_to(reader: AIOKafkaConsumer, tp: TopicPartition, end: int) -> list[StoredRecord]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _READ_TIMEOUT_S
    records = []
    while await reader.position(tp) < end:
        if loop.time() > deadline:
            raise AuditChainError(f"cannot read {tp.topic}[{tp.partition}] up to {end}")
        fetched = await reader.getmany(tp, timeout_ms=_FETCH_TIMEOUT_MS)
        records += [
            StoredRecord(tp.partition, m.offset, m.value, m.timestamp)
            for m in fetched.get(tp, [])
            if m.offset < end
        ]
    return records
