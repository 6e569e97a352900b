"""Where a ``read_committed`` reader's data ends in a partition written in transactions.

Every transaction ends with a commit (or abort) marker, which takes an offset but is
never delivered. The end offset a ``read_committed`` consumer is told (the last stable
offset) is therefore one past a marker, and a reader that waits until it has *received*
the record at ``end - 1`` — as Faust's table recovery does — waits forever
(faust-streaming issue 47). :func:`visible_ends` reads the tail of each partition once
and answers the offset after its last record that such a reader does receive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

from databus.settings import Settings

log = logging.getLogger(__name__)

#: Offsets read back from the end at first; widened eightfold while nothing is found.
FIRST_WINDOW = 64
#: How long reading the tails may take before the plain ends are answered.
DEADLINE_S = 60.0


async def visible_ends(
    settings: Settings, ends: Mapping[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """For each partition, the offset after the last record below ``ends[tp]`` that a
    ``read_committed`` reader receives (0 when it receives none)."""
    result = {tp: end for tp, end in ends.items() if end <= 0}
    todo = {tp: end for tp, end in ends.items() if end > 0}
    if not todo:
        return result
    consumer = AIOKafkaConsumer(
        **settings.kafka_client_options(),
        client_id=f"{settings.client_id}-tail",
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        result.update(await _read_tails(consumer, todo))
    finally:
        await consumer.stop()
    return result


async def _read_tails(
    consumer: AIOKafkaConsumer, todo: dict[TopicPartition, int]
) -> dict[TopicPartition, int]:
    found: dict[TopicPartition, int] = {}
    starts = await consumer.beginning_offsets(list(todo))
    deadline = time.monotonic() + DEADLINE_S
    window = FIRST_WINDOW
    while todo:
        consumer.assign(list(todo))
        low = {tp: max(starts[tp], end - window) for tp, end in todo.items()}
        for tp, offset in low.items():
            consumer.seek(tp, offset)
        last = await _last_records(consumer, todo, deadline)
        if last is None:
            log.warning("reading the tails of %d partitions timed out", len(todo))
            return found | todo
        below = {}
        for tp in todo:
            if tp in last:
                found[tp] = last[tp] + 1
            elif low[tp] <= starts[tp]:
                found[tp] = 0  # nothing visible at all
            else:
                below[tp] = low[tp]
        todo, window = below, window * 8
    return found


async def _last_records(
    consumer: AIOKafkaConsumer, bounds: dict[TopicPartition, int], deadline: float
) -> dict[TopicPartition, int] | None:
    """The offset of the last record received below each bound, reading from the
    current positions until each position has passed its bound; None past ``deadline``."""
    last: dict[TopicPartition, int] = {}
    pending = set(bounds)
    while pending:
        if time.monotonic() > deadline:
            return None
        fetched = await consumer.getmany(*pending, timeout_ms=200)
        for tp, records in fetched.items():
            for record in records:
                if record.offset < bounds[tp]:
                    last[tp] = record.offset
        for tp in list(pending):
            if await consumer.position(tp) >= bounds[tp]:
                pending.discard(tp)
                consumer.pause(tp)
        await asyncio.sleep(0)
    return last
