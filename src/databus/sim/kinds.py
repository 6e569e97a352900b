"""What can happen to a resident, and how the agency that sees it writes it down.

The simulator schedules compact *happenings* (a time, a kind, a resident, a few details)
and turns each into an agency record of DATASETS.md only when its day is read, so that a
whole province fits in memory. Record numbers (visit, exam, certificate, ticket) are
built from the happening's sequence number, which is unique within a simulation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from databus.sim.population import Resident

Values = dict[str, Any]


class AgencyRecord(NamedTuple):
    """One record as an agency hands it to the publisher: the dataset and its JSON
    object (with the raw ``citizen_id``)."""

    dataset: str
    values: Values


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind of happening: the dataset it is reported in and how it is written."""

    name: str
    dataset: str
    write: Callable[..., Values]
    """``write(resident, occurred_at, sequence, *details)`` returns the record's fields
    after ``citizen_id`` and ``occurred_at``."""
    withdraws: bool = False
    """A retraction: its first detail is the happening it withdraws, handed to ``write``
    as that happening's record (what the agency published, and now sends back)."""


def _household(event: str) -> Callable[..., Values]:
    def write(resident: Resident, _: int, region_code: str | None = None) -> Values:
        return {
            "event": event,
            "birth_date": resident.birth_date.isoformat(),
            "region_code": region_code or resident.region_code,
        }

    return write


def _deregistered(resident: Resident, _: int, region_code: str, date_of_death: dt.date) -> Values:
    return {
        "event": "deregistered_death",
        "birth_date": resident.birth_date.isoformat(),
        "region_code": region_code,
        "date_of_death": date_of_death.isoformat(),
    }


def _pensioner(status: str) -> Callable[..., Values]:
    def write(resident: Resident, _: int) -> Values:
        plan = resident.pension
        if plan is None:
            raise ValueError(f"resident {resident.index} has no pension")
        return {
            "pensioner_account": plan.account,
            "scheme": plan.scheme,
            "status": status,
            "benefit_start": plan.benefit_start.isoformat(),
            "monthly_amount_cents": plan.monthly_amount_cents,
        }

    return write


def _face(_: Resident, __: int, channel: str) -> Values:
    return {"channel": channel}


def _visit(
    _: Resident, sequence: int, visit_type: str, verified: bool, hospital_code: str
) -> Values:
    return {
        "visit_id": f"V-{hospital_code}-{sequence:08d}",
        "hospital_code": hospital_code,
        "visit_type": visit_type,
        "identity_verified": verified,
    }


def _exam(_: Resident, sequence: int, institution_code: str) -> Values:
    return {"exam_id": f"E-{institution_code}-{sequence:08d}", "institution_code": institution_code}


def _tap(resident: Resident, sequence: int, mode: str, station_code: str) -> Values:
    verified = mode in {"rail", "flight"}
    card_id = f"ET-{sequence:010d}" if verified else resident.card_id
    return {
        "card_id": card_id,
        "mode": mode,
        "station_code": station_code,
        "identity_verified": verified,
    }


def _death_certificate(
    _: Resident, sequence: int, date_of_death: dt.date, institution_code: str
) -> Values:
    return {
        "certificate_no": f"DC-{date_of_death.year}-{sequence:08d}",
        "date_of_death": date_of_death.isoformat(),
        "institution_code": institution_code,
    }


def _funeral(_: Resident, sequence: int, date_of_death: dt.date, funeral_home: str) -> Values:
    return {
        "record_no": f"FR-{date_of_death.year}-{sequence:08d}",
        "date_of_death": date_of_death.isoformat(),
        "funeral_home_code": funeral_home,
    }


def _retraction(_: Resident, __: int, withdrawn: Values, dataset: str, reason: str) -> Values:
    return {"dataset": dataset, "reason": reason, "record": withdrawn}


REGISTERED = Kind("registered", "police.household.v1", _household("registered"))
MOVED_OUT = Kind("moved_out", "police.household.v1", _household("moved_out"))
MOVED_IN = Kind("moved_in", "police.household.v1", _household("moved_in"))
DEREGISTERED = Kind("deregistered_death", "police.household.v1", _deregistered)
PENSION_ACTIVE = Kind("pension_active", "hrss.pensioner.v1", _pensioner("active"))
PENSION_TERMINATED = Kind("pension_terminated", "hrss.pensioner.v1", _pensioner("terminated"))
FACE_AUTHENTICATION = Kind("face_authentication", "hrss.face_authentication.v1", _face)
HOSPITAL_VISIT = Kind("hospital_visit", "health.hospital_visit.v1", _visit)
PHYSICAL_EXAM = Kind("physical_exam", "health.physical_exam.v1", _exam)
TRANSIT_TAP = Kind("transit_tap", "transport.transit_tap.v1", _tap)
DEATH_CERTIFICATE = Kind("death_certificate", "health.death_certificate.v1", _death_certificate)
FUNERAL = Kind("funeral", "civil.funeral.v1", _funeral)
HEALTH_RETRACTION = Kind("health_retraction", "health.retraction.v1", _retraction, withdraws=True)
