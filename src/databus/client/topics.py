"""Asking the broker about specific topics, so that "missing" and "not yours" differ.

Metadata for *all* topics silently leaves out those this user may not see; asked for
by name, the broker says TOPIC_AUTHORIZATION_FAILED, and that is what the user is told.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaError

from databus.errors import AccessDeniedError, MissingTopicError
from databus.internals import update_metadata
from databus.settings import Settings

_HINTS = {
    "read": "an agency reads only the share topics of its active grants "
    "(`databus grants list --consumer {user}`)",
    "write": "an agency writes only the topics of the datasets it owns (`databus catalog list`)",
}


async def require_topics(
    client: Any, topics: Sequence[str], settings: Settings, *, access: Literal["read", "write"]
) -> ClusterMetadata:
    """Metadata of ``topics`` (an aiokafka client's); an error naming the topic if one
    is missing or this user may not use it."""
    cluster = ClusterMetadata()
    if not await update_metadata(client, cluster, topics):
        raise KafkaError(f"no broker of {settings.bootstrap_servers} answered")
    user = settings.principal()
    denied = sorted(set(topics) & cluster.unauthorized_topics)
    if denied:
        raise AccessDeniedError(
            f"the broker refused {user} access to {', '.join(denied)} "
            f"(TOPIC_AUTHORIZATION_FAILED): {_HINTS[access].format(user=user)}",
            principal=user,
            resource=denied[0],
        )
    missing = [topic for topic in topics if topic not in cluster.topics()]
    if missing:
        raise MissingTopicError(
            f"topic {', '.join(missing)} does not exist on {settings.bootstrap_servers}; "
            "run `databus topics apply` first"
        )
    return cluster
