"""Records into share views, each share with its audit record: the work of one batch.

Kafka-free and Faust-free: :class:`Projector` takes consumed records of one partition
and the chain head of that partition's audit trail, and returns what must be written
(share messages, audit messages, dead letters) and the new head. The share worker
writes it all in one transaction with the input offsets.

A share message is the source event with only the granted fields, keyed by
``person_ref``, with the source's ``ce_id`` (so a consumer can drop duplicates and an
auditor can trace it), ``ce_source`` (the agency that published it) and ``ce_keyid``
(the pseudonym key its ``person_ref`` was made with); its
``ce_type`` is the share view, whose schema is the source's restricted to those fields.

A source message is passed on only if it is what it says: decodable, of its topic's
dataset, and with its dataset's owner as ``ce_source`` (only the owner may write the
topic, but the header is the writer's word: an agency must not pass its records off as
another's). Anything else is dead-lettered with the reason, never shared.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from databus.catalog import AUDIT, CATALOG, DLQ, Catalog, Dataset
from databus.errors import DecodeError
from databus.governance.chain import ChainHead
from databus.governance.grants import Grant, GrantSet
from databus.governance.views import catalog_with_views, share_dataset
from databus.identity import mask_id_like
from databus.records import Reason
from databus.wire import (
    Encoder,
    Envelope,
    KafkaRecord,
    Message,
    Rejection,
    decode,
    encode_record,
)

#: ``ce_source`` of audit records and the ``agency`` of the share worker's dead letters.
SHARE_SOURCE = "databus-share"
_RAW_KEPT = 2048
_SOURCE_KEPT = 64


@dataclass(slots=True)
class Projection:
    """What one batch of one partition produced."""

    head: ChainHead
    """The audit chain's head once ``messages`` are written."""
    messages: list[Message] = field(default_factory=list)
    """Share messages, each followed by its audit record, in input order."""
    dead_letters: list[Rejection] = field(default_factory=list)
    shared: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Records shared, by (consumer, dataset)."""
    withheld: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Records not shared because the grant had expired, by (consumer, dataset)."""
    refused: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Dead letters by (topic, reason): undecodable, wrong_type, forged_source."""

    def refuse(self, record: KafkaRecord, code: str, reason: str) -> None:
        """Dead-letter a source message instead of sharing it."""
        self.dead_letters.append(_dead_letter(record, reason))
        self.refused[(record.topic, code)] += 1


@dataclass(frozen=True, slots=True)
class _View:
    grant: Grant
    dataset: Dataset


class Projector:
    """Applies a set of grants to records; rebuild it when the grants change."""

    def __init__(self, grants: GrantSet, catalog: Catalog = CATALOG) -> None:
        self.grants = grants
        self._catalog = catalog_with_views(grants, catalog)
        self._views: dict[str, list[_View]] = {}
        for grant in grants:
            view = _View(grant, share_dataset(grant, catalog))
            self._views.setdefault(grant.dataset, []).append(view)
        self._encoders: dict[tuple[str, str, str | None], Encoder] = {}
        self._audit = Encoder(AUDIT, SHARE_SOURCE)

    @property
    def share_topics(self) -> list[str]:
        """Every share topic these grants write (or wrote, for expired ones)."""
        return sorted(v.dataset.topic for views in self._views.values() for v in views)

    def project(
        self,
        records: Sequence[KafkaRecord],
        head: ChainHead,
        *,
        now: dt.datetime,
        today: dt.date,
    ) -> Projection:
        """Share ``records`` (one partition, fetch order) under the grants active on
        ``today``; ``now`` is the time the audit records give."""
        out = Projection(head)
        shared_at = now.isoformat()
        for record in records:
            views = self._views.get(record.topic)
            if not views:
                continue  # nobody receives this dataset
            try:
                event = decode(record, self._catalog)
            except DecodeError as error:
                out.refuse(record, "undecodable", error.reason)
                continue
            if event.envelope.type != record.topic:
                reason = f"ce_type {event.envelope.type} on topic {record.topic}"
                out.refuse(record, "wrong_type", reason)
                continue
            owner = self._catalog.get(record.topic).owner
            if event.envelope.source != owner:
                claimed = mask_id_like(event.envelope.source[:_SOURCE_KEPT])
                reason = (
                    f"ce_source {claimed!r} on {record.topic}, whose records only {owner} "
                    "publishes: not shared"
                )
                out.refuse(record, "forged_source", reason)
                continue
            data = event.record.model_dump(mode="json")
            for view in views:
                key = (view.grant.consumer, view.grant.dataset)
                if not view.grant.active_on(today):
                    out.withheld[key] += 1
                    continue
                share = self._encoder(view.dataset, event.envelope).encode(
                    {name: data[name] for name in view.grant.fields},
                    subject=data["person_ref"],
                    time=event.envelope.time.encode() if event.envelope.time else None,
                    event_id=event.envelope.id,
                )
                audit, out.head = out.head.seal(
                    _audit_content(view, data["person_ref"], event.envelope.id, record, shared_at)
                )
                out.messages += [
                    share,
                    self._audit.encode(
                        audit,
                        subject=data["person_ref"],
                        time=shared_at.encode(),
                        event_id=audit["hash"][:32],
                    ),
                ]
                out.shared[key] += 1
        return out

    def _encoder(self, dataset: Dataset, envelope: Envelope) -> Encoder:
        """A view's encoder that keeps the source's ``ce_source`` and ``ce_keyid``."""
        key = (dataset.name, envelope.source, envelope.keyid)
        encoder = self._encoders.get(key)
        if encoder is None:
            encoder = Encoder(dataset, envelope.source, key_id=envelope.keyid)
            self._encoders[key] = encoder
        return encoder


def _audit_content(
    view: _View, person_ref: str, event_id: str, record: KafkaRecord, shared_at: str
) -> dict[str, Any]:
    grant = view.grant
    return {
        "consumer": grant.consumer,
        "dataset": grant.dataset,
        "share_topic": view.dataset.topic,
        "person_ref": person_ref,
        "source_event_id": event_id,
        "source_offset": record.offset,
        "fields": list(grant.fields),
        "purpose": grant.purpose,
        "legal_basis": grant.legal_basis,
        "shared_at": shared_at,
    }


def _dead_letter(record: KafkaRecord, reason: str) -> Rejection:
    """A dead letter for a source message that cannot be shared (raw ID numbers masked)."""
    raw = (record.value or b"")[:_RAW_KEPT].decode("utf-8", errors="replace")
    return Rejection(
        dataset=record.topic,
        agency=SHARE_SOURCE,
        raw=mask_id_like(raw),
        reasons=[Reason(field="$", message=reason)],
        source=f"{record.topic}[{record.partition}]@{record.offset}",
    )


def foreign_audit_letter(partition: int, offset: int, value: bytes | None, why: str) -> Message:
    """The dead letter of a record in the audit topic that is not an audit record; its
    id is its position, so reporting it again on a later takeover is a duplicate."""
    where = f"{AUDIT.topic}[{partition}]@{offset}"
    raw = (value or b"")[:_RAW_KEPT].decode("utf-8", errors="replace")
    rejection = Rejection(
        dataset=AUDIT.topic,
        agency=SHARE_SOURCE,
        raw=mask_id_like(raw),
        reasons=[Reason(field="$", message=f"{why}: skipped by the audit chain")],
        source=where,
    )
    event_id = hashlib.sha256(where.encode()).hexdigest()[:32]
    return encode_record(DLQ, rejection.to_record(), source=SHARE_SOURCE, event_id=event_id)
