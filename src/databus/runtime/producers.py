"""Producer settings every producer of the bus starts from."""

from __future__ import annotations

from typing import Any

from databus.settings import Settings


def producer_options(settings: Settings, *, linger_ms: int = 10) -> dict[str, Any]:
    """Idempotent, ``acks=all`` (with ``min.insync.replicas`` a record acknowledged is on
    enough replicas to survive a broker), batches of up to 256 KiB; the publisher, the
    workers' writers, the clock and their benchmark baselines use them."""
    return {
        **settings.kafka_client_options(),
        "client_id": f"{settings.client_id}-publisher",
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": linger_ms,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 30_000,
    }
