"""Prometheus metrics of the publisher and the worker (prometheus-client).

Every long-running process serves them on ``/metrics``: a worker on Faust's web port
(``databus worker --web-port``, together with Faust's own ``faust_*`` sensor metrics),
a publishing process on ``--metrics-port``. Labels are datasets, agencies, topics,
partitions, decision kinds and reason codes — bounded sets; never an ID number or a
``person_ref``.

Costs are kept off the per-record path: counts are added per batch, latencies are
observed per batch (see each metric's help text).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST

#: Seconds; from a few milliseconds (a warm pipeline) to minutes (a backlog).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

PUBLISH_RECORDS = Counter(
    "databus_publish_records",
    "Records offered to the publisher, by dataset, owning agency and outcome "
    "(accepted: sent to the dataset's topic; rejected: sent to the dead-letter topic).",
    ["dataset", "agency", "outcome"],
)
PUBLISH_REJECTIONS = Counter(
    "databus_publish_rejections",
    "Reasons of rejected records: reason is 'field:kind', field one of the dataset's fields, "
    "'$' (the whole line) or '$extra' (any key the dataset does not have, never named), kind "
    "one of a closed set (records.dlq.REASON_KINDS), e.g. 'citizen_id:value_error', "
    "'$extra:extra_forbidden', '$:csv_header', 'occurred_at:future_dated'; a record can have "
    "several.",
    ["dataset", "agency", "reason"],
)
PUBLISH_LATENCY = Histogram(
    "databus_publish_latency_seconds",
    "From a producer batch being opened (its oldest record) to Kafka acknowledging it; "
    "observed once per batch, so an upper bound for each record in it.",
    ["dataset"],
    buckets=LATENCY_BUCKETS,
)

WORKER_EVENTS = Counter(
    "databus_worker_events",
    "Input events handled by the worker, by dataset (clock ticks: system.clock.v1).",
    ["dataset"],
)
WORKER_DECISIONS = Counter(
    "databus_worker_decisions",
    "Derived events emitted, by dataset and kind (the record's decision or alert kind).",
    ["dataset", "kind"],
)
DEAD_LETTER_REASONS = (
    "undecodable",
    "future_dated",
    "wrong_partition",
    "pseudonym_key",
    "processing_error",
)
"""Why the worker dead-letters an input message (a closed set: the ``reason`` label)."""
WORKER_DEAD_LETTERS = Counter(
    "databus_worker_dead_letters",
    "Input messages the worker could not use and sent to the dead-letter topic, by topic "
    "and reason: undecodable (not a record of the topic's dataset), future_dated (dated "
    "after the broker received it), wrong_partition (its key belongs to another "
    "partition), pseudonym_key (made with another pseudonym key than the bus uses), "
    "processing_error (deciding it raised an error: a bug, or a record the contract "
    "should have refused).",
    ["topic", "reason"],
)
WORKER_TRANSACTIONS_FAILED = Counter(
    "databus_worker_transactions_failed",
    "Batches of one input partition whose transaction did not commit (exactly-once "
    "output), by partition and whether the writer was fenced by a newer one with its "
    "transactional id (fenced=True: another worker took the partition). Nothing of them "
    "is visible; the worker rejoins the group and reads the partition again.",
    ["partition", "fenced"],
)
TICK_KINDS = ("first", "next_day", "same_day", "gap", "backwards", "future", "reset")
"""How a clock tick relates to the partition's previous one (the ``kind`` label)."""
WORKER_TICKS = Counter(
    "databus_worker_ticks",
    "Clock ticks handled, per partition counted once, by kind: first (none before it "
    "since the worker took the partition), next_day, same_day (a repeat: decides "
    "nothing), gap (more days after the previous tick than the clock allows without "
    "--allow-gap), backwards (an earlier day: decides nothing), future (more than a day "
    "after the broker received it), reset (sets the clock back, reinstating what later "
    "ticks decided).",
    ["kind"],
)
WORKER_DEMO_BROKER = Gauge(
    "databus_worker_demo_broker",
    "1 when the worker runs against a demo broker (the public demo key and records dated "
    "in the future are accepted there), else 0.",
)
WORKER_LATENCY = Histogram(
    "databus_worker_processing_latency_seconds",
    "From an input message's Kafka timestamp to the worker's output for it being "
    "acknowledged by Kafka; observed for about 8 messages of each fetch (evenly "
    "spread, and the last).",
    buckets=LATENCY_BUCKETS,
)
WORKER_STATE_PERSONS = Gauge(
    "databus_worker_state_persons",
    "Persons in the partitions this worker holds as active (standby copies not counted).",
)
WORKER_CONSUMER_LAG = Gauge(
    "databus_worker_consumer_lag",
    "Messages between the worker's position and the partition's high watermark, as of "
    "the worker's latest fetch from that partition.",
    ["topic", "partition"],
)
WORKER_LAST_TICK = Gauge(
    "databus_worker_last_tick_timestamp_seconds",
    "Unix time at which this worker last handled a clock tick.",
)


#: Where metrics and health endpoints listen unless the operator says otherwise.
DEFAULT_HOST = "127.0.0.1"


def serve(port: int, address: str = DEFAULT_HOST) -> None:
    """Serve the default registry on ``http://address:port/metrics`` (a thread)."""
    start_http_server(port, addr=address, registry=REGISTRY)


def observe_since(timestamps: Iterable[float], now: float | None = None) -> None:
    """Processing latency of inputs with these Kafka timestamps (Unix seconds)."""
    now = time.time() if now is None else now
    for timestamp in timestamps:
        WORKER_LATENCY.observe(max(0.0, now - timestamp))


_faust_metrics: Any = None


def faust_monitor(app: Any) -> None:
    """Let a Faust app report into the registry: its Prometheus sensor's ``faust_*``
    metrics (messages, events, commits, rebalances...)."""
    from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor  # noqa: PLC0415

    global _faust_metrics  # noqa: PLW0603 - one set per process, like the registry
    if _faust_metrics is None:
        _faust_metrics = FaustMetrics.create(REGISTRY, "faust")
    app.monitor = PrometheusMonitor(metrics=_faust_metrics)


def track_state_size(count: Callable[[], float]) -> None:
    """Let the state gauge ask ``count`` at scrape time."""
    WORKER_STATE_PERSONS.set_function(count)


# The share worker (databus share worker): governed sharing, docs/governance.md.
SHARE_RECORDS = Counter(
    "databus_share_records",
    "Records shared with a consumer, by consumer and source dataset; each has its audit "
    "record in audit.sharing.v1.",
    ["consumer", "dataset"],
)
SHARE_WITHHELD = Counter(
    "databus_share_withheld",
    "Records not shared with a consumer because its grant had expired.",
    ["consumer", "dataset"],
)
SHARE_DEAD_LETTER_REASONS = ("undecodable", "wrong_type", "forged_source")
"""Why the share worker dead-letters a source message (the ``reason`` label)."""
SHARE_DEAD_LETTERS = Counter(
    "databus_share_dead_letters",
    "Source messages the share worker did not share and sent to the dead-letter topic, by "
    "topic and reason: undecodable (not a record of the topic's dataset), wrong_type "
    "(ce_type of another dataset), forged_source (ce_source is not the dataset's owner).",
    ["topic", "reason"],
)
SHARE_ABORTED = Counter(
    "databus_share_aborted_transactions",
    "Batches whose transaction was aborted; they are shared again from the committed offsets.",
)
SHARE_FENCED = Counter(
    "databus_share_fenced",
    "Times a partition's transactional producer was fenced by another producer with its "
    "transactional id (a successor, or someone with the share worker's credential) and the "
    "worker took the partition back with a fresh producer.",
    ["partition"],
)
SHARE_RECOVERY_FAILURES = Counter(
    "databus_share_recovery_failures",
    "Attempts to take a partition back after a failed batch that failed themselves (the "
    "worker tries again at the partition's next batch).",
    ["partition"],
)
SHARE_FOREIGN_AUDIT_RECORDS = Counter(
    "databus_share_foreign_audit_records",
    "Records in audit.sharing.v1 that are not audit records, met at the end of a partition "
    "when taking it over: skipped (the chain continues after the last audit record), "
    "logged and dead-lettered. Only the share worker should write that topic.",
    ["partition"],
)
SHARE_GRANTS_APPLIED = Counter(
    "databus_share_grants_applied",
    "Grant sets the share worker started applying (at start and on each change of the "
    "grant files), each after its grants.applied record was written to audit.operations.v1.",
)
SHARE_GRANTS = Gauge(
    "databus_share_grants",
    "Grants the share worker applies, by state (active, expired), as of its last batch.",
    ["state"],
)
