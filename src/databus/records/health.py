"""Health: hospital visits, physical exams, death certificates."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from databus.records.base import BusRecord, Code, Day, InputRecord, Record, not_after_record


class HospitalVisitFields(Record):
    visit_id: Code = Field(description="The hospital's visit number.")
    hospital_code: Code = Field(description="Code of the hospital.")
    visit_type: Literal["outpatient", "inpatient", "emergency"] = Field(
        description="Kind of visit."
    )
    identity_verified: bool = Field(description="Whether the patient's identity was checked.")


class HospitalVisitInput(HospitalVisitFields, InputRecord):
    """A hospital visit as the health commission publishes it."""


class HospitalVisit(HospitalVisitFields, BusRecord):
    """A hospital visit on the bus."""


class PhysicalExamFields(Record):
    exam_id: Code = Field(description="The exam number.")
    institution_code: Code = Field(description="Code of the examining institution.")


class PhysicalExamInput(PhysicalExamFields, InputRecord):
    """A physical exam as the health commission publishes it."""


class PhysicalExam(PhysicalExamFields, BusRecord):
    """A physical exam on the bus."""


class DeathCertificateFields(Record):
    certificate_no: Code = Field(description="Number of the medical death certificate.")
    date_of_death: Day = Field(description="Date of death (not after occurred_at).")
    institution_code: Code = Field(description="Code of the certifying institution.")

    @model_validator(mode="after")
    def _death_not_after_certificate(self) -> Self:
        not_after_record(self, self.date_of_death, "date_of_death")
        return self


class DeathCertificateInput(DeathCertificateFields, InputRecord):
    """A medical death certificate as the health commission publishes it."""


class DeathCertificate(DeathCertificateFields, BusRecord):
    """A medical death certificate on the bus."""
