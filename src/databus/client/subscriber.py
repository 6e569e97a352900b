"""The subscriber SDK: typed events from any dataset, undecodable messages reported.

Without a group the subscriber reads every partition itself and commits nothing (good
for looking); with a group it joins the consumer group and commits its progress.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import GroupAuthorizationFailedError
from pydantic import BaseModel

from databus.catalog import CATALOG, Catalog
from databus.client.lifecycle import Startable
from databus.client.topics import require_topics
from databus.errors import AccessDeniedError, DecodeError
from databus.internals import kafka_client
from databus.settings import Settings
from databus.wire import Event, decode

log = logging.getLogger(__name__)


def log_decode_error(error: DecodeError) -> None:
    """Default handling of an undecodable message: say where it is and go on."""
    log.warning("%s", error)


class Subscriber(Startable):
    """Reads one or more datasets and yields decoded :class:`~databus.wire.Event` s."""

    def __init__(
        self,
        datasets: Sequence[str],
        settings: Settings | None = None,
        *,
        group: str | None = None,
        from_beginning: bool = False,
        catalog: Catalog = CATALOG,
        on_decode_error: Callable[[DecodeError], None] = log_decode_error,
    ) -> None:
        self.settings = settings or Settings()
        self._topics = [catalog.get(name).topic for name in datasets]
        self._catalog = catalog
        self._group = group
        self._from_beginning = from_beginning
        self._on_decode_error = on_decode_error
        self._next_offsets: dict[TopicPartition, int] = {}
        self._consumer = AIOKafkaConsumer(
            **self.settings.kafka_client_options(),
            client_id=f"{self.settings.client_id}-subscriber",
            group_id=group,
            enable_auto_commit=False,
            # Workers may run exactly-once: never show output of aborted transactions.
            isolation_level="read_committed",
            auto_offset_reset="earliest" if from_beginning else "latest",
        )

    async def start(self) -> None:
        """Connect, check the topics (missing, or not this user's to read: both named),
        then subscribe (with a group) or assign every partition (without)."""
        await self._consumer.start()
        try:
            cluster = await require_topics(
                kafka_client(self._consumer), self._topics, self.settings, access="read"
            )
        except BaseException:
            await self._consumer.stop()
            raise
        if self._group is not None:
            self._consumer.subscribe(self._topics)
            return
        partitions = []
        for topic in self._topics:
            numbers = cluster.partitions_for_topic(topic) or set()
            partitions += [TopicPartition(topic, n) for n in sorted(numbers)]
        self._consumer.assign(partitions)
        if self._from_beginning:
            await self._consumer.seek_to_beginning(*partitions)
        else:
            await self._consumer.seek_to_end(*partitions)

    async def stop(self) -> None:
        """Commit what was handed out (with a group) and disconnect."""
        try:
            await self.commit()
        finally:
            await self._consumer.stop()

    async def commit(self) -> None:
        """Commit, for the group, exactly the events handed out so far (not more)."""
        if self._group is not None and self._next_offsets:
            await self._consumer.commit(dict(self._next_offsets))
            self._next_offsets.clear()

    async def events(
        self, *, limit: int | None = None, idle_timeout: float | None = None
    ) -> AsyncIterator[Event[BaseModel]]:
        """Decoded events in partition order; stops after ``limit`` events or when
        nothing has arrived for ``idle_timeout`` seconds."""
        seen = 0
        loop = asyncio.get_running_loop()
        last_arrival = loop.time()
        while limit is None or seen < limit:
            try:
                batches = await self._consumer.getmany(timeout_ms=200, max_records=1000)
            except GroupAuthorizationFailedError:
                user = self.settings.principal()
                raise AccessDeniedError(
                    f"the broker refused {user} the consumer group {self._group} "
                    f"(GROUP_AUTHORIZATION_FAILED): an agency's groups are named "
                    f"{user}.<anything>",
                    principal=user,
                    resource=str(self._group),
                ) from None
            if not batches:
                if idle_timeout is not None and loop.time() - last_arrival >= idle_timeout:
                    return
                continue
            last_arrival = loop.time()
            for partition, messages in batches.items():
                for message in messages:
                    self._next_offsets[partition] = message.offset + 1
                    try:
                        event = decode(message, self._catalog)
                    except DecodeError as error:
                        self._on_decode_error(error)
                        continue
                    yield event
                    seen += 1
                    if limit is not None and seen >= limit:
                        return
            await self.commit()
