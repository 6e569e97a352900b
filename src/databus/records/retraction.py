"""Retractions: an agency withdraws a record it published, by its id, with a reason.

Records on the bus are never deleted or changed: a wrong record (a death certificate
issued for the wrong person, a hospital visit filed under another patient) is withdrawn
by a newer record of the agency that published it, on that agency's own retraction
dataset ``<owner>.retraction.v1``. Only the owner can write that topic (its ACLs), and
a retraction may name only the owner's own datasets, so no agency can withdraw
another's records. The key is the person the withdrawn record was about, so the
retraction reaches the same partition, and the same person state, as that record.
An agency names the withdrawn record by its id (``record_id``, its ``ce_id``, as
``databus explain`` shows it) or, simpler, sends the record again as it published it
(``record``): the publisher computes its id, which depends on the pseudonym key, and
puts only the id on the bus. What each decision rule does on a retraction is in the
rules' docstrings and in docs/rules.md: decisions the withdrawn record caused are
reinstated by new decisions whose reason says ``retracted``; nothing is deleted from the
log.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from databus.records.base import BusRecord, InputRecord, Record, Text, record_error

RecordId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
"""The ``ce_id`` of a source record: 32 lower-case hex digits."""


class RetractionFields(Record):
    """What every retraction on the bus says besides the withdrawn record's dataset."""

    record_id: RecordId = Field(description="ce_id of the withdrawn record.")
    reason: Text = Field(description="Why the record is withdrawn (shown to officers).")


class RetractionInputFields(Record):
    """What an agency says: the withdrawn record by id, or the record itself."""

    record_id: RecordId | None = Field(
        default=None, description="ce_id of the withdrawn record (or give `record`)."
    )
    record: dict[str, Any] | None = Field(
        default=None,
        description="The withdrawn record as the agency published it (instead of "
        "record_id): the publisher computes its id; only the id reaches the bus.",
    )
    reason: Text = Field(description="Why the record is withdrawn (shown to officers).")

    @model_validator(mode="after")
    def _names_one_record(self) -> Self:
        if (self.record_id is None) == (self.record is None):
            raise record_error("record_id", "give either record_id or record, not both")
        return self


class HrssWithdrawn(Record):
    dataset: Literal["hrss.pensioner.v1", "hrss.face_authentication.v1"] = Field(
        description="Dataset of the withdrawn record."
    )


class HrssRetractionInput(HrssWithdrawn, RetractionInputFields, InputRecord):
    """A withdrawal of one of hrss's records, as hrss publishes it."""


class HrssRetraction(HrssWithdrawn, RetractionFields, BusRecord):
    """A withdrawal of one of hrss's records, on the bus."""


class HealthWithdrawn(Record):
    dataset: Literal[
        "health.hospital_visit.v1", "health.physical_exam.v1", "health.death_certificate.v1"
    ] = Field(description="Dataset of the withdrawn record.")


class HealthRetractionInput(HealthWithdrawn, RetractionInputFields, InputRecord):
    """A withdrawal of one of health's records, as health publishes it."""


class HealthRetraction(HealthWithdrawn, RetractionFields, BusRecord):
    """A withdrawal of one of health's records, on the bus."""


class TransportWithdrawn(Record):
    dataset: Literal["transport.transit_tap.v1"] = Field(
        description="Dataset of the withdrawn record."
    )


class TransportRetractionInput(TransportWithdrawn, RetractionInputFields, InputRecord):
    """A withdrawal of one of transport's records, as transport publishes it."""


class TransportRetraction(TransportWithdrawn, RetractionFields, BusRecord):
    """A withdrawal of one of transport's records, on the bus."""


class CivilWithdrawn(Record):
    dataset: Literal["civil.funeral.v1"] = Field(description="Dataset of the withdrawn record.")


class CivilRetractionInput(CivilWithdrawn, RetractionInputFields, InputRecord):
    """A withdrawal of one of civil's records, as civil publishes it."""


class CivilRetraction(CivilWithdrawn, RetractionFields, BusRecord):
    """A withdrawal of one of civil's records, on the bus."""


class PoliceWithdrawn(Record):
    dataset: Literal["police.household.v1"] = Field(description="Dataset of the withdrawn record.")


class PoliceRetractionInput(PoliceWithdrawn, RetractionInputFields, InputRecord):
    """A withdrawal of one of police's records, as police publishes it."""


class PoliceRetraction(PoliceWithdrawn, RetractionFields, BusRecord):
    """A withdrawal of one of police's records, on the bus."""


#: Owner agency → (input form, bus form) of its retraction dataset ``<owner>.retraction.v1``.
RETRACTION_MODELS: Final[dict[str, tuple[type[InputRecord], type[BusRecord]]]] = {
    "hrss": (HrssRetractionInput, HrssRetraction),
    "health": (HealthRetractionInput, HealthRetraction),
    "transport": (TransportRetractionInput, TransportRetraction),
    "civil": (CivilRetractionInput, CivilRetraction),
    "police": (PoliceRetractionInput, PoliceRetraction),
}


def retraction_dataset(owner: str) -> str:
    """The retraction dataset of an owner agency."""
    return f"{owner}.retraction.v1"


RETRACTION_DATASETS: Final = frozenset(retraction_dataset(owner) for owner in RETRACTION_MODELS)
"""Every retraction dataset."""
