"""Retractions: an agency withdraws a record it published, by its id, with a reason.

Records on the bus are never deleted or changed: a wrong record (a death certificate
issued for the wrong person, a hospital visit filed under another patient) is withdrawn
by a newer record of the agency that published it, on that agency's own retraction
dataset ``<owner>.retraction.v1``. Only the owner can write that topic (its ACLs), and
a retraction may name only the owner's own datasets, so no agency can withdraw
another's records. The key is the person the withdrawn record was about, so the
retraction reaches the same partition, and the same person state, as that record.
What each decision rule does on a retraction is in the rules' docstrings and in
docs/rules.md: decisions the withdrawn record caused are reinstated by new decisions
whose reason says ``retracted``; nothing is deleted from the log.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field, StringConstraints

from databus.records.base import BusRecord, InputRecord, Record, Text

RecordId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
"""The ``ce_id`` of a source record: 32 lower-case hex digits."""


class RetractionFields(Record):
    """What every retraction says besides the withdrawn record's dataset."""

    record_id: RecordId = Field(description="ce_id of the withdrawn record.")
    reason: Text = Field(description="Why the record is withdrawn (shown to officers).")


class HrssRetractionFields(RetractionFields):
    dataset: Literal["hrss.pensioner.v1", "hrss.face_authentication.v1"] = Field(
        description="Dataset of the withdrawn record."
    )


class HrssRetractionInput(HrssRetractionFields, InputRecord):
    """A withdrawal of one of hrss's records, as hrss publishes it."""


class HrssRetraction(HrssRetractionFields, BusRecord):
    """A withdrawal of one of hrss's records, on the bus."""


class HealthRetractionFields(RetractionFields):
    dataset: Literal[
        "health.hospital_visit.v1", "health.physical_exam.v1", "health.death_certificate.v1"
    ] = Field(description="Dataset of the withdrawn record.")


class HealthRetractionInput(HealthRetractionFields, InputRecord):
    """A withdrawal of one of health's records, as health publishes it."""


class HealthRetraction(HealthRetractionFields, BusRecord):
    """A withdrawal of one of health's records, on the bus."""


class TransportRetractionFields(RetractionFields):
    dataset: Literal["transport.transit_tap.v1"] = Field(
        description="Dataset of the withdrawn record."
    )


class TransportRetractionInput(TransportRetractionFields, InputRecord):
    """A withdrawal of one of transport's records, as transport publishes it."""


class TransportRetraction(TransportRetractionFields, BusRecord):
    """A withdrawal of one of transport's records, on the bus."""


class CivilRetractionFields(RetractionFields):
    dataset: Literal["civil.funeral.v1"] = Field(description="Dataset of the withdrawn record.")


class CivilRetractionInput(CivilRetractionFields, InputRecord):
    """A withdrawal of one of civil's records, as civil publishes it."""


class CivilRetraction(CivilRetractionFields, BusRecord):
    """A withdrawal of one of civil's records, on the bus."""


class PoliceRetractionFields(RetractionFields):
    dataset: Literal["police.household.v1"] = Field(description="Dataset of the withdrawn record.")


class PoliceRetractionInput(PoliceRetractionFields, InputRecord):
    """A withdrawal of one of police's records, as police publishes it."""


class PoliceRetraction(PoliceRetractionFields, BusRecord):
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
