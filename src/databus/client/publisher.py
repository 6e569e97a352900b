"""The publisher SDK: agency records in, validated pseudonymous events on Kafka out.

One aiokafka producer per publisher, idempotent with ``acks=all`` and batching
(``linger_ms``). Rejected records go to ``dlq.rejected.v1`` with their reasons; the
counts always add up: ``accepted + rejected == records offered``.

At start the publisher asks the broker for its cluster id: the public demo key, and
records dated in the future (simulated days), are accepted only by a demo broker
(:mod:`databus.sandbox`). With SASL its ``ce_source`` is the user it logs in as.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from aiokafka import AIOKafkaProducer

from databus import metrics
from databus.catalog import CATALOG, DLQ, Catalog
from databus.client.batching import PartitionBatches
from databus.client.files import Line
from databus.client.intake import Clock, Intake, utc_now
from databus.client.lifecycle import Startable
from databus.client.topics import require_topics
from databus.errors import ConfigurationError, PublishError
from databus.identity import Pseudonymizer, mask_id_like
from databus.records.base import InputRecord
from databus.records.dlq import EXTRA, WHOLE_LINE
from databus.runtime.producers import producer_options
from databus.sandbox import cluster_id, is_demo_cluster
from databus.settings import Settings
from databus.wire import Message, Rejection

log = logging.getLogger(__name__)

#: How many sends may be in flight before we wait for their delivery reports.
IN_FLIGHT = 20_000


@dataclass(slots=True)
class PublishSummary:
    """What happened to the records offered to :meth:`Publisher.publish_many`."""

    accepted: int = 0
    rejected: int = 0

    @property
    def total(self) -> int:
        return self.accepted + self.rejected


Submission = InputRecord | Mapping[str, Any] | bytes | str | Line
"""What can be published: a typed record, a mapping, a JSON line, or a file line."""


class Publisher(Startable):
    """Validates, pseudonymises, envelopes and sends agency records."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        catalog: Catalog = CATALOG,
        source: str | None = None,
        linger_ms: int = 10,
        clock: Clock = utc_now,
    ) -> None:
        """``source`` (``ce_source``) defaults to each dataset's owner, or with SASL to
        the user name, and then may not name anyone else; ``clock`` is the publisher's
        "now" for refusing records dated in the future."""
        self.settings = settings or Settings()
        self._catalog = catalog
        self._pseudonymizer = Pseudonymizer(self.settings.pseudonym_key_bytes())
        self._source = fixed_source(self.settings, source)
        self._producer = AIOKafkaProducer(**producer_options(self.settings, linger_ms=linger_ms))
        self._clock = clock
        self._intakes: dict[str, Intake] = {}
        self._known_topics: set[str] = set()
        self.demo_broker = False
        """Whether the broker is a demo broker (known after :meth:`start`)."""

    @property
    def key_id(self) -> str:
        """The id of the pseudonym key, sent as ``ce_keyid`` with every message."""
        return self._pseudonymizer.key_id

    async def start(self) -> None:
        """Connect to the brokers and learn whether they are a demo broker; the demo
        key is refused by any other."""
        await self._producer.start()
        try:
            self.demo_broker = is_demo_cluster(await cluster_id(self._producer.client))
            if self.settings.demo and not self.demo_broker:
                raise ConfigurationError(
                    f"the public demo pseudonym key works only against a demo broker, and "
                    f"{self.settings.bootstrap_servers} is not one (demo brokers are started "
                    "by `databus demo` or `databus broker start --demo`): set "
                    "DATABUS_PSEUDONYM_KEY instead of DATABUS_DEMO"
                )
        except BaseException:
            await self._producer.stop()
            raise
        for intake in self._intakes.values():
            intake.allow_future = self.demo_broker

    async def stop(self) -> None:
        """Deliver what is pending, then disconnect."""
        await self._producer.stop()

    def intake(self, dataset: str) -> Intake:
        """The (cached) intake of one dataset."""
        intake = self._intakes.get(dataset)
        if intake is None:
            intake = Intake(
                self._catalog.get(dataset),
                self._pseudonymizer,
                source=self._source,
                clock=self._clock,
                allow_future=self.demo_broker,
            )
            self._intakes[dataset] = intake
        return intake

    def check(
        self, dataset: str, submission: Submission, *, where: str | None = None
    ) -> Message | Rejection:
        """Validate and envelope one record without sending it; ``where`` names it in
        rejections (for example ``visits.ndjson:12``)."""
        intake = self.intake(dataset)
        if isinstance(submission, InputRecord):
            return intake.admit(submission, where=where)
        if isinstance(submission, Line):
            return intake.from_line(submission, where=where)
        if isinstance(submission, str):
            return intake.from_json(submission.encode(), where=where)
        if isinstance(submission, bytes):
            return intake.from_json(submission, where=where)
        return intake.from_mapping(submission, where=where, strict=False)

    async def publish(self, dataset: str, submission: Submission) -> Message | Rejection:
        """Publish one record and wait until Kafka has it (or it is dead-lettered)."""
        outcome = self.check(dataset, submission)
        await self._ensure_topic(DLQ.topic if isinstance(outcome, Rejection) else dataset)
        started = time.monotonic()
        delivery = await self._send(outcome)
        await delivery
        agency = self.intake(dataset).source
        if isinstance(outcome, Rejection):
            _count_rejection(outcome, agency, self.intake(dataset).columns.allowed)
            metrics.PUBLISH_RECORDS.labels(dataset, agency, "rejected").inc()
        else:
            metrics.PUBLISH_LATENCY.labels(dataset).observe(time.monotonic() - started)
            metrics.PUBLISH_RECORDS.labels(dataset, agency, "accepted").inc()
        return outcome

    async def publish_many(
        self,
        dataset: str,
        submissions: Iterable[Submission],
        *,
        on_rejection: Callable[[Rejection], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
        origin: str | None = None,
    ) -> PublishSummary:
        """Publish many records; returns the counts once every send is delivered.

        ``origin`` (a file name, masked if it holds an ID number) prefixes where each
        rejected record came from."""
        topic = self._catalog.get(dataset).topic
        origin = mask_id_like(origin) if origin else None
        await self._ensure_topic(topic)
        await self._ensure_topic(DLQ.topic)
        batches = PartitionBatches(
            self._producer,
            topic,
            await self._producer.partitions_for(topic),
            on_delivered=metrics.PUBLISH_LATENCY.labels(dataset).observe,
        )
        summary = PublishSummary()
        counted = PublishSummary()
        dead_letters: list[asyncio.Future[Any]] = []
        agency = self.intake(dataset).source
        fields = self.intake(dataset).columns.allowed
        accepted = metrics.PUBLISH_RECORDS.labels(dataset, agency, "accepted")
        rejected = metrics.PUBLISH_RECORDS.labels(dataset, agency, "rejected")

        async def settle() -> None:
            """Send what is batched and wait until Kafka has everything so far."""
            await batches.flush()
            await _delivered(batches.sent + dead_letters)
            batches.sent.clear()
            dead_letters.clear()
            accepted.inc(summary.accepted - counted.accepted)
            rejected.inc(summary.rejected - counted.rejected)
            counted.accepted, counted.rejected = summary.accepted, summary.rejected
            if on_progress is not None:
                on_progress(summary.total)

        for count, submission in enumerate(submissions, start=1):
            outcome = self.check(dataset, submission)
            if isinstance(outcome, Rejection):
                # Where it came from is worked out only for the (rare) rejected record.
                number = submission.number if isinstance(submission, Line) else count
                where = f"{origin}:{number}" if origin else f"record {number}"
                outcome = replace(outcome, source=where)
                dead_letters.append(await self._send(outcome))
                summary.rejected += 1
                _count_rejection(outcome, agency, fields)
                if on_rejection is not None:
                    on_rejection(outcome)
            else:
                full = batches.add(outcome)
                if full is not None:
                    await batches.send(full)
                summary.accepted += 1
            if count % IN_FLIGHT == 0:
                await settle()
        await settle()
        return summary

    async def _send(self, outcome: Message | Rejection) -> asyncio.Future[Any]:
        if isinstance(outcome, Rejection):
            message = outcome.to_message(source=outcome.agency, key_id=self.key_id)
        else:
            message = outcome
        future: asyncio.Future[Any] = await self._producer.send(
            message.topic, message.value, key=message.key, headers=message.headers
        )
        return future

    async def _ensure_topic(self, topic: str) -> None:
        """The topic exists and this user may see it (or an error that says which)."""
        if topic in self._known_topics:
            return
        await require_topics(self._producer.client, [topic], self.settings, access="write")
        self._known_topics.add(topic)


def fixed_source(settings: Settings, source: str | None) -> str | None:
    """The publisher's ``ce_source``: with SASL the user name, which ``source`` may only
    repeat (an agency cannot publish as another); without SASL ``source`` as given."""
    if not settings.uses_sasl:
        return source
    principal = settings.principal()
    if source is not None and source != principal:
        raise ConfigurationError(
            f"cannot publish as source {mask_id_like(source)!r}: with SASL a publisher's "
            f"source (ce_source) is the user it logs in as, {principal}"
        )
    return principal


def _count_rejection(rejection: Rejection, agency: str, fields: frozenset[str]) -> None:
    """Count each reason by its code, whose field is one of the dataset's, ``$`` or
    ``$extra``: a closed set, so the label's series stay bounded whatever the input."""
    for reason in rejection.reasons:
        field, _, kind = reason.code.partition(":")
        if field not in fields and field != EXTRA:
            field = WHOLE_LINE
        metrics.PUBLISH_REJECTIONS.labels(rejection.dataset, agency, f"{field}:{kind}").inc()


async def _delivered(pending: list[asyncio.Future[Any]]) -> None:
    """Wait for every delivery report; a failed one is an error, not a silent loss."""
    try:
        await asyncio.gather(*pending)
    except Exception as exc:
        raise PublishError(f"Kafka did not accept a message: {exc!r}") from exc
