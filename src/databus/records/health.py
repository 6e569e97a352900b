"""Health: hospital visits, physical exams, death certificates."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from databus.records.base import BusRecord, Code, InputRecord, Record


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
    date_of_death: dt.date = Field(description="Date of death.")
    institution_code: Code = Field(description="Code of the certifying institution.")


class DeathCertificateInput(DeathCertificateFields, InputRecord):
    """A medical death certificate as the health commission publishes it."""


class DeathCertificate(DeathCertificateFields, BusRecord):
    """A medical death certificate on the bus."""
