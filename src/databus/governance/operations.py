"""The operations audit: every operator action that can change many decisions, or who
receives what, leaves a record in ``audit.operations.v1`` — who (the Kafka principal,
and the operating-system user and host), what, why, when, and whether a guard refused
it. A command writes its record *before* it acts, so an action that could not be
audited is not done; a refused action is recorded too, then refused.
"""

from __future__ import annotations

import datetime as dt
import getpass
import socket
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaProducer

from databus.catalog import OPERATIONS
from databus.client.topics import require_topics
from databus.records.audit import OperationAction, OperationAudit
from databus.runtime.producers import producer_options
from databus.settings import Settings
from databus.wire import Encoder

#: ``ce_source`` of operations audit records.
OPERATIONS_SOURCE = "databus-operations"


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return "unknown"


def operation_record(
    settings: Settings,
    action: OperationAction,
    outcome: str,
    *,
    reason: str | None = None,
    details: Mapping[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> OperationAudit:
    """The audit record of an action run with ``settings``."""
    return OperationAudit.model_validate(
        {
            "action": action,
            "outcome": outcome,
            "principal": settings.principal(),
            "user": _os_user(),
            "host": socket.gethostname(),
            "at": at or dt.datetime.now(dt.UTC),
            "reason": reason,
            "details": dict(details or {}),
        }
    )


async def record_operation(settings: Settings, record: OperationAudit) -> None:
    """Write ``record`` to ``audit.operations.v1`` and wait until Kafka has it; raises
    (an error naming the topic) when the principal may not write it."""
    producer = AIOKafkaProducer(**producer_options(settings, linger_ms=0))
    try:
        await producer.start()
        await require_topics(producer.client, [OPERATIONS.topic], settings, access="write")
        data = record.model_dump(mode="json")
        message = Encoder(OPERATIONS, OPERATIONS_SOURCE).encode(data, time=data["at"].encode())
        await (await producer.send(message.topic, message.value, headers=message.headers))
    finally:
        await producer.stop()
