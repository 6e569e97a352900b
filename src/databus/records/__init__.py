"""Typed records of every dataset (one module per agency domain, plus bus datasets)."""

from databus.records.base import BusRecord, InputRecord, Record
from databus.records.civil import Funeral, FuneralInput
from databus.records.derived import ElderlyAllowance, EvidenceRef, FraudAlert, PensionStatus
from databus.records.dlq import Reason, Rejected
from databus.records.health import (
    DeathCertificate,
    DeathCertificateInput,
    HospitalVisit,
    HospitalVisitInput,
    PhysicalExam,
    PhysicalExamInput,
)
from databus.records.hrss import (
    FaceAuthentication,
    FaceAuthenticationInput,
    Pensioner,
    PensionerInput,
)
from databus.records.police import Household, HouseholdInput
from databus.records.retraction import (
    RETRACTION_DATASETS,
    RETRACTION_MODELS,
    RetractionFields,
    retraction_dataset,
)
from databus.records.system import ClockTick
from databus.records.transport import TransitTap, TransitTapInput

__all__ = [
    "RETRACTION_DATASETS",
    "RETRACTION_MODELS",
    "BusRecord",
    "ClockTick",
    "DeathCertificate",
    "DeathCertificateInput",
    "ElderlyAllowance",
    "EvidenceRef",
    "FaceAuthentication",
    "FaceAuthenticationInput",
    "FraudAlert",
    "Funeral",
    "FuneralInput",
    "HospitalVisit",
    "HospitalVisitInput",
    "Household",
    "HouseholdInput",
    "InputRecord",
    "PensionStatus",
    "Pensioner",
    "PensionerInput",
    "PhysicalExam",
    "PhysicalExamInput",
    "Reason",
    "Record",
    "Rejected",
    "RetractionFields",
    "TransitTap",
    "TransitTapInput",
    "retraction_dataset",
]
