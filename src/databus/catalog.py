"""The dataset catalog: the single source of truth for every dataset on the bus.

Topic names, owners, models, keys, partitioning, retention and the classification of
each field are declared here once; topics, JSON Schemas, ACLs and docs derive from it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_origin

from pydantic import BaseModel

from databus import records as r
from databus.errors import CatalogError
from databus.records.audit import OperationAudit, SharingAudit

Classification = Literal["public", "internal", "personal", "sensitive_personal"]
"""Field classes; health data and whereabouts are sensitive personal information
(PIPL art. 28)."""

Level = Literal["general", "important"]
"""Dataset grades after GB/T 43697-2024."""

DAY_MS = 24 * 60 * 60 * 1000
FOREVER = -1

#: Where the JSON Schemas of a dataset live, relative to the repository root; also used
#: as the ``ce_dataschema`` attribute of every message.
SCHEMA_DIR = "schemas"


@dataclass(frozen=True)
class Dataset:
    """One dataset: a Kafka topic with a typed record, an owner and a key."""

    name: str
    owner: str
    description: str
    bus_model: type[BaseModel]
    classification: Mapping[str, Classification]
    input_model: type[r.InputRecord] | None = None
    person_keyed: bool = True
    copartitioned: bool = True
    fixed_partitions: int | None = None
    retention_ms: int = FOREVER
    level: Level = "general"
    config: Mapping[str, str] = field(default_factory=dict)
    shareable: bool = True
    """Whether grants may share it with other agencies (never the dead letters' raw
    lines, the clock or the audit trail itself); only person-keyed datasets can be,
    see :attr:`can_be_shared`."""
    schema_of: str | None = None
    """The dataset whose exported bus schema describes these records, when it is not
    this one: a share view carries a subset of its source's fields."""

    @property
    def topic(self) -> str:
        """The Kafka topic; by convention it has the dataset's name."""
        return self.name

    @property
    def major(self) -> int:
        """The major version, from the ``.v<major>`` suffix."""
        return int(self.name.rsplit(".v", 1)[1])

    @property
    def is_source(self) -> bool:
        """Whether agencies publish it (it has an input form with ``citizen_id``)."""
        return self.input_model is not None

    @property
    def can_be_shared(self) -> bool:
        """Shareable and keyed by ``person_ref`` (as every share topic is)."""
        return self.shareable and self.person_keyed

    @property
    def dataschema(self) -> str:
        """The ``ce_dataschema`` URI: the bus-form JSON Schema file of this dataset."""
        return f"{SCHEMA_DIR}/{self.schema_of or self.name}/bus.schema.json"

    def partitions(self, shared: int) -> int:
        """The partition count, given the count shared by co-partitioned topics."""
        if self.fixed_partitions is not None:
            return self.fixed_partitions
        return shared

    def topic_config(self) -> dict[str, str]:
        """Topic-level Kafka configuration derived from the catalog entry."""
        return {"retention.ms": str(self.retention_ms), **self.config}

    def describe(self, shared_partitions: int) -> dict[str, Any]:
        """A JSON-ready description, used by ``databus catalog show``."""
        fields = []
        for name, info in self.bus_model.model_fields.items():
            fields.append(
                {
                    "name": name,
                    "type": _type_name(info.annotation),
                    "required": info.is_required(),
                    "classification": self.classification.get(name, "internal"),
                    "description": info.description or "",
                }
            )
        return {
            "dataset": self.name,
            "topic": self.topic,
            "owner": self.owner,
            "description": self.description,
            "level": self.level,
            "shareable": self.can_be_shared,
            "key": "person_ref" if self.person_keyed else None,
            "partitions": self.partitions(shared_partitions),
            "retention_ms": self.retention_ms,
            "config": self.topic_config(),
            "input_form": self.input_model.__name__ if self.input_model else None,
            "bus_form": self.bus_model.__name__,
            "dataschema": self.dataschema,
            "fields": fields,
        }


def _type_name(annotation: object) -> str:
    if get_origin(annotation) is None and hasattr(annotation, "__name__"):
        return str(annotation.__name__)
    return str(annotation).replace("typing.", "").replace("datetime.", "")


class Catalog:
    """All datasets by name, with lookups that fail with a helpful message."""

    def __init__(self, datasets: list[Dataset]) -> None:
        self._by_name = {d.name: d for d in datasets}
        if len(self._by_name) != len(datasets):
            raise CatalogError("duplicate dataset names in the catalog")
        for dataset in datasets:
            unknown = set(dataset.classification) - set(dataset.bus_model.model_fields)
            if dataset.input_model is not None:
                unknown -= set(dataset.input_model.model_fields)
            if unknown:
                raise CatalogError(
                    f"classification names unknown fields {sorted(unknown)}", dataset=dataset.name
                )

    def __iter__(self) -> Iterator[Dataset]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str) -> Dataset:
        """The dataset called ``name``; the error suggests close names."""
        try:
            return self._by_name[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._by_name, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise CatalogError(
                f"unknown dataset {name!r}{hint} (see `databus catalog list`)", dataset=name
            ) from None

    def sources(self) -> list[Dataset]:
        """Datasets that agencies publish."""
        return [d for d in self if d.is_source]

    def shareable(self) -> list[Dataset]:
        """Datasets that grants may share with other agencies."""
        return [d for d in self if d.can_be_shared]

    def copartitioned(self) -> list[Dataset]:
        """Topics that must share one partition count so that agents can join them."""
        return [d for d in self if d.copartitioned]


_PERSON: dict[str, Classification] = {
    "person_ref": "personal",
    "citizen_id": "personal",
    "occurred_at": "internal",
}
#: When a person saw a doctor or passed a station is itself health data or whereabouts.
_SENSITIVE_WHEN: dict[str, Classification] = {"occurred_at": "sensitive_personal"}
_EVIDENCE_RETENTION = 400 * DAY_MS
#: Source records and ticks carry the broker's time of appending them as their Kafka
#: timestamp, whatever the writer's clock says: the worker orders a partition's topics by
#: it and refuses evidence dated later than it (records.base.FUTURE_SKEW).
_BROKER_TIME = {"message.timestamp.type": "LogAppendTime"}


def _retractions() -> list[Dataset]:
    """One retraction dataset per owner agency (records.retraction)."""
    return [
        Dataset(
            name=r.retraction_dataset(owner),
            owner=owner,
            description=f"Withdrawals of {owner}'s own records, by id, with a reason.",
            input_model=input_model,
            bus_model=bus_model,
            level="important",
            config=_BROKER_TIME,
            classification={
                **_PERSON,
                "dataset": "internal",
                "record_id": "internal",
                "record": "sensitive_personal",
                "reason": "personal",
            },
        )
        for owner, (input_model, bus_model) in r.RETRACTION_MODELS.items()
    ]


CATALOG = Catalog(
    [
        Dataset(
            name="hrss.pensioner.v1",
            config=_BROKER_TIME,
            owner="hrss",
            description="Pensioner roster: who receives a pension, from when, how much.",
            input_model=r.PensionerInput,
            bus_model=r.Pensioner,
            level="important",
            classification={
                **_PERSON,
                "pensioner_account": "personal",
                "scheme": "internal",
                "status": "personal",
                "benefit_start": "personal",
                "monthly_amount_cents": "personal",
            },
        ),
        Dataset(
            name="hrss.face_authentication.v1",
            config=_BROKER_TIME,
            owner="hrss",
            description="Successful face authentications (the manual path of proof of life).",
            input_model=r.FaceAuthenticationInput,
            bus_model=r.FaceAuthentication,
            retention_ms=_EVIDENCE_RETENTION,
            classification={**_PERSON, "channel": "internal"},
        ),
        Dataset(
            name="health.hospital_visit.v1",
            config=_BROKER_TIME,
            owner="health",
            description="Hospital visits (outpatient, inpatient, emergency).",
            input_model=r.HospitalVisitInput,
            bus_model=r.HospitalVisit,
            retention_ms=_EVIDENCE_RETENTION,
            level="important",
            classification={
                **_PERSON,
                **_SENSITIVE_WHEN,
                "visit_id": "sensitive_personal",
                "hospital_code": "sensitive_personal",
                "visit_type": "sensitive_personal",
                "identity_verified": "internal",
            },
        ),
        Dataset(
            name="health.physical_exam.v1",
            config=_BROKER_TIME,
            owner="health",
            description="Physical examinations.",
            input_model=r.PhysicalExamInput,
            bus_model=r.PhysicalExam,
            retention_ms=_EVIDENCE_RETENTION,
            level="important",
            classification={
                **_PERSON,
                **_SENSITIVE_WHEN,
                "exam_id": "sensitive_personal",
                "institution_code": "sensitive_personal",
            },
        ),
        Dataset(
            name="health.death_certificate.v1",
            config=_BROKER_TIME,
            owner="health",
            description="Medical death certificates.",
            input_model=r.DeathCertificateInput,
            bus_model=r.DeathCertificate,
            level="important",
            classification={
                **_PERSON,
                "certificate_no": "personal",
                "date_of_death": "personal",
                "institution_code": "sensitive_personal",
            },
        ),
        Dataset(
            name="transport.transit_tap.v1",
            config=_BROKER_TIME,
            owner="transport",
            description="Transit card taps; rail and flight boardings are identity-checked.",
            input_model=r.TransitTapInput,
            bus_model=r.TransitTap,
            retention_ms=_EVIDENCE_RETENTION,
            # A province's travel, person by person (GB/T 43697-2024).
            level="important",
            classification={
                **_PERSON,
                **_SENSITIVE_WHEN,
                "card_id": "personal",
                "mode": "sensitive_personal",
                "station_code": "sensitive_personal",
                "identity_verified": "internal",
            },
        ),
        Dataset(
            name="civil.funeral.v1",
            config=_BROKER_TIME,
            owner="civil",
            description="Funeral and cremation records.",
            input_model=r.FuneralInput,
            bus_model=r.Funeral,
            classification={
                **_PERSON,
                "record_no": "personal",
                "date_of_death": "personal",
                "funeral_home_code": "internal",
            },
        ),
        Dataset(
            name="police.household.v1",
            config=_BROKER_TIME,
            owner="police",
            description="Household registry events: registration, moves, deregistration.",
            input_model=r.HouseholdInput,
            bus_model=r.Household,
            level="important",
            classification={
                **_PERSON,
                "event": "personal",
                "birth_date": "personal",
                "region_code": "personal",
                "date_of_death": "personal",
            },
        ),
        Dataset(
            name="system.clock.v1",
            config=_BROKER_TIME,
            owner="databus",
            description="Daily ticks, one per partition; decisions never read the wall clock.",
            bus_model=r.ClockTick,
            person_keyed=False,
            shareable=False,
            retention_ms=30 * DAY_MS,
            classification={"as_of": "public", "reset": "public", "reason": "internal"},
        ),
        *_retractions(),
        Dataset(
            name="derived.pension_status.v1",
            owner="databus",
            description="Silent pension authentication decisions (DOMAIN.md §1).",
            bus_model=r.PensionStatus,
            level="important",
            classification={
                "person_ref": "personal",
                "pensioner_account": "personal",
                "decision": "personal",
                "reason": "personal",
                "as_of": "personal",
                "qualified_until": "personal",
                "evidence": "sensitive_personal",
                "date_of_death": "personal",
                "rule_version": "public",
            },
        ),
        Dataset(
            name="derived.fraud_alert.v1",
            owner="databus",
            description="Evidence of life dated after a registered death.",
            bus_model=r.FraudAlert,
            level="important",
            classification={
                "person_ref": "personal",
                "kind": "internal",
                "date_of_death": "personal",
                "death_evidence": "personal",
                "activity": "sensitive_personal",
                "rule_version": "public",
            },
        ),
        Dataset(
            name="derived.elderly_allowance.v1",
            owner="databus",
            description="Old-age allowance decisions (DOMAIN.md §2).",
            bus_model=r.ElderlyAllowance,
            classification={
                "person_ref": "personal",
                "decision": "personal",
                "tier": "personal",
                "monthly_amount_cents": "personal",
                "effective_month": "personal",
                "reason": "personal",
                "rule_version": "public",
            },
        ),
        Dataset(
            name="dlq.rejected.v1",
            owner="databus",
            description="Rejected input lines and undecodable messages, with reasons.",
            bus_model=r.Rejected,
            person_keyed=False,
            shareable=False,
            copartitioned=False,
            fixed_partitions=3,
            retention_ms=90 * DAY_MS,
            classification={
                "dataset": "public",
                "agency": "public",
                "raw": "personal",
                "reasons": "internal",
                "rejected_at": "internal",
                "source": "internal",
            },
        ),
        Dataset(
            name="audit.sharing.v1",
            config=_BROKER_TIME,
            owner="databus",
            description="Every record shared with a consumer: who, what, why, when; a hash "
            "chain per partition (partition = the source record's).",
            bus_model=SharingAudit,
            level="important",
            shareable=False,
            classification={
                "seq": "internal",
                "consumer": "internal",
                "dataset": "internal",
                "share_topic": "internal",
                "person_ref": "personal",
                "source_event_id": "internal",
                "source_offset": "internal",
                "fields": "internal",
                "purpose": "internal",
                "legal_basis": "internal",
                "shared_at": "internal",
                "prev_hash": "internal",
                "hash": "internal",
            },
        ),
        Dataset(
            name="audit.operations.v1",
            owner="databus",
            description="Operator actions that change many decisions or who receives what "
            "(clock ticks and resets, ACLs applied, grants applied), done or refused.",
            bus_model=OperationAudit,
            person_keyed=False,
            shareable=False,
            copartitioned=False,
            fixed_partitions=1,
            level="important",
            classification={
                "action": "internal",
                "outcome": "internal",
                "principal": "internal",
                "user": "internal",
                "host": "internal",
                "at": "internal",
                "reason": "internal",
                "details": "internal",
            },
        ),
    ]
)

DLQ = CATALOG.get("dlq.rejected.v1")
CLOCK = CATALOG.get("system.clock.v1")
AUDIT = CATALOG.get("audit.sharing.v1")
OPERATIONS = CATALOG.get("audit.operations.v1")
