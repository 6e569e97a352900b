"""Time order across co-partitioned topics, with barrier records that wait for the rest.

Kafka orders records within a partition, not across topics. A worker that is behind
reads partition *p* of several topics at different speeds: the small clock topic runs
ahead of the large transit topic, so a day's tick would be handled before that day's
evidence — and a pensioner with evidence on the bus would be suspended. So records wait
in per-partition buffers and leave them in timestamp order (the Kafka timestamp: the
broker's ``LogAppendTime`` on the source topics and the clock; sources before barriers
on equal times), as Kafka Streams picks among the partitions
of a task. A *barrier* record (a clock tick) leaves only when every other topic of its
partition is known to hold nothing older: either a later record of that topic is
buffered, or the consumer's position in that partition has reached its end offset,
asked of the broker after the tick was read (and everything fetched from it has left
its buffer). A tick is sent only after the day's
records were acknowledged (``databus clock tick``, the simulator), so that end offset
covers them.

The same holds for every record, not only barriers: a record leaves only when each other
topic of its partition — the clock, and the other sources — has a record buffered (then
time order decides) or has been fetched to the end offset asked after the record was
read (as Kafka Streams' ``max.task.idle.ms`` waits for a task's empty partitions).
Otherwise a tick the consumer has not fetched yet (the clock's fetch can lag behind a
source's, as after a start) would be overtaken by the next day's evidence: a pensioner
due for suspension on that tick would be confirmed instead (one demo run in three
differed from the in-order replay so, by one to three persons); and a source read far
behind another — the 36,000 pensioner records of a 100,000-resident register — would be
overtaken by the first day's hospital visits of the same persons (81 persons of the
100,000-resident demo differed from the replay so).

Pure bookkeeping; :class:`~databus.streams.fastpath.BatchConsumer` feeds it.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from faust.types import TP

#: (timestamp, rank of the topic, offset, topic-partition) of a buffer's head.
_Head = tuple[int, int, int, TP]


class PartitionOrder:
    """Buffers of fetched records per topic-partition, released in time order."""

    def __init__(self, topics: Sequence[str], barriers: Iterable[str]) -> None:
        """``topics`` in tie-break order; ``barriers`` are among them."""
        self.barriers = frozenset(barriers)
        self._rank = {topic: rank for rank, topic in enumerate(topics)}
        self._rank.update({t: len(topics) + rank for rank, t in enumerate(sorted(self.barriers))})
        self._buffers: dict[TP, deque[Any]] = {}

    def add(self, tp: TP, records: Sequence[Any]) -> None:
        """Records fetched from ``tp``, in offset order."""
        self._buffers.setdefault(tp, deque()).extend(records)

    def has(self, tp: TP) -> bool:
        """Whether records of ``tp`` are waiting."""
        return bool(self._buffers.get(tp))

    def buffered(self) -> int:
        """Records waiting."""
        return sum(len(buffer) for buffer in self._buffers.values())

    def partitions(self) -> set[int]:
        """Partitions with records waiting."""
        return {tp.partition for tp, buffer in self._buffers.items() if buffer}

    def waiting_barriers(self) -> set[int]:
        """Partitions whose next barrier record has no release decision yet."""
        return {
            tp.partition
            for tp, buffer in self._buffers.items()
            if buffer and tp.topic in self.barriers
        }

    def forget(self, tps: Iterable[TP] | None = None) -> None:
        """Drop the buffers of ``tps`` (all when ``None``): revoked, or seeking back."""
        if tps is None:
            self._buffers.clear()
        for tp in tps or ():
            self._buffers.pop(tp, None)

    def take(
        self,
        sources: Callable[[int], Iterable[TP]],
        caught_up: Callable[[TP], bool],
        *,
        barriers: Callable[[int], Iterable[TP]],
    ) -> tuple[list[Any], dict[TP, tuple[int, int]]]:
        """Release what may go, in order; returns the records and, per topic-partition,
        the first and last offset released.

        ``sources(p)`` and ``barriers(p)`` are the non-barrier and the barrier
        topic-partitions of partition ``p`` that this consumer holds; ``caught_up(tp)``
        tells whether the consumer has fetched ``tp`` to its end (as asked after the
        buffered records were read)."""
        released: list[Any] = []
        spans: dict[TP, tuple[int, int]] = {}
        by_partition: dict[int, list[TP]] = {}
        for tp, buffer in self._buffers.items():
            if buffer:
                by_partition.setdefault(tp.partition, []).append(tp)
        for partition, tps in by_partition.items():
            heads = [self._head(tp) for tp in tps]
            heapq.heapify(heads)
            mine = [*sources(partition), *barriers(partition)]
            while heads:
                if not self._may_pass(mine, caught_up):
                    break
                _, _, _, tp = heads[0]
                heapq.heappop(heads)
                buffer = self._buffers[tp]
                record = buffer.popleft()
                released.append(record)
                first = spans[tp][0] if tp in spans else record.offset
                spans[tp] = (first, record.offset)
                if buffer:
                    heapq.heappush(heads, self._head(tp))
        return released, spans

    def _may_pass(self, mine: Iterable[TP], caught_up: Callable[[TP], bool]) -> bool:
        """The head of the partition's order may pass when every topic-partition of the
        partition (sources and barriers) is either buffered (its head is later, or it
        would be the head) or read to its end."""
        return all(self._buffers.get(tp) or caught_up(tp) for tp in mine)

    def _head(self, tp: TP) -> _Head:
        record = self._buffers[tp][0]
        return (record.timestamp or 0, self._rank.get(tp.topic, 0), record.offset, tp)
