"""Every private name of aiokafka and faust-streaming that databus relies on, but one.

The exception is :mod:`databus.streams.fastpath`: its Faust subclasses (the batch path)
extend faust-streaming 0.15's consumer and use its protected attributes as a subclass
does; ``pyproject.toml`` pins ``faust-streaming<0.16`` for them. Everything else that
reaches into a library goes through the functions here, so that an upgrade has one
place to check; ruff's ``SLF001`` (private member access) is on everywhere else.

Checked against aiokafka 0.14.0 and faust-streaming 0.15.3.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient
from aiokafka.cluster import ClusterMetadata


def kafka_client(owner: AIOKafkaConsumer | AIOKafkaProducer) -> AIOKafkaClient:
    """The started client inside a consumer or producer (its connections and metadata),
    for metadata requests without a second connection."""
    client: AIOKafkaClient = owner._client
    return client


async def update_metadata(
    client: AIOKafkaClient, cluster: ClusterMetadata, topics: Iterable[str]
) -> bool:
    """Fill ``cluster`` with the brokers' metadata of ``topics`` (only those: a user
    without Describe on other topics gets an answer); ``False`` if no broker answered."""
    answered: bool = await client._metadata_update(cluster, list(topics))
    return answered


async def send_admin_request(admin: AIOKafkaAdminClient, request: Any) -> Any:
    """Send a request aiokafka's admin client has no method for (the ACL requests) to
    its controller or any broker, and return the response."""
    return await admin._send_request(request)


def set_fetch_wait(consumer: AIOKafkaConsumer, *, min_bytes: int, max_wait_ms: int) -> None:
    """Let a consumer's fetches wait up to ``max_wait_ms`` for ``min_bytes`` (read by
    ``AIOKafkaConsumer.start`` when it builds its fetcher, so call it before)."""
    consumer._fetch_min_bytes = min_bytes
    consumer._fetch_max_wait_ms = max_wait_ms


def service_stopped(service: Any) -> Any:
    """The ``is_set`` of a mode service's stop event (a callable: has it been asked to
    stop?)."""
    return service._stopped.is_set


def set_isolation_level(consumer: AIOKafkaConsumer, level: str) -> None:
    """Set a consumer's isolation level (``read_committed``: transactions' records only
    once committed, aborted ones never; read by ``AIOKafkaConsumer.start`` when it
    builds its fetcher, whose ``end_offsets`` then answer the last stable offset)."""
    if level not in ("read_committed", "read_uncommitted"):
        raise ValueError(level)
    consumer._isolation_level = level


def request_rejoin(consumer_thread: Any) -> None:
    """Ask the group coordinator of Faust's consumer (which runs in its own thread and
    event loop) to rejoin the group: a rebalance, after which every partition is taken
    again from its committed offset."""
    consumer: AIOKafkaConsumer | None = consumer_thread._consumer
    if consumer is None or consumer._coordinator is None:
        return
    consumer_thread.thread_loop.call_soon_threadsafe(consumer._coordinator.request_rejoin)
