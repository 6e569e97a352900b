"""Demo brokers: the one place where the public demo key and simulated future days work.

A *demo broker* is a Kafka cluster whose cluster id begins with :data:`DEMO_CLUSTER_PREFIX`:
``databus demo`` and ``databus broker start --demo`` format their broker with such an id
(:func:`new_demo_cluster_id`), and the compose stack sets one. Clients learn the cluster
id from the broker itself (a Metadata request), so no environment variable or stray
``databus.toml`` can make a production cluster accept the demo key or records dated in
the future: a production cluster formatted by Kafka's own tools never has this prefix.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from aiokafka.protocol.metadata import MetadataRequest

#: The first 12 characters of every demo broker's cluster id (9 bytes of its 16).
DEMO_CLUSTER_PREFIX = "DEMO-databus"
_PREFIX_BYTES = base64.urlsafe_b64decode(DEMO_CLUSTER_PREFIX)
_UUID_BYTES = 16


def new_demo_cluster_id() -> str:
    """A KRaft cluster id (16 bytes, URL-safe base64) that marks a demo broker."""
    raw = _PREFIX_BYTES + os.urandom(_UUID_BYTES - len(_PREFIX_BYTES))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def is_demo_cluster(cluster_id: str | None) -> bool:
    """Whether a broker with this cluster id is a demo broker."""
    return cluster_id is not None and cluster_id.startswith(DEMO_CLUSTER_PREFIX)


async def cluster_id(client: Any) -> str | None:
    """The cluster id of the brokers a started aiokafka client is connected to."""
    node = client.get_random_node()
    if node is None:
        await client.force_metadata_update()
        node = client.get_random_node()
    response = await client.send(node, MetadataRequest([]))
    found = getattr(response, "cluster_id", None)
    return found if isinstance(found, str) else None


async def on_demo_broker(settings: Any) -> bool:
    """Whether the brokers of ``settings`` (databus.settings.Settings) are a demo broker."""
    from aiokafka import AIOKafkaClient  # noqa: PLC0415 - keep this module light to import

    client = AIOKafkaClient(**settings.kafka_client_options())
    try:
        await client.bootstrap()
        return is_demo_cluster(await cluster_id(client))
    finally:
        await client.close()
