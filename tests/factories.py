"""Factories for test data: synthetic resident ID numbers."""

from __future__ import annotations

import datetime as dt

from databus.identity import check_character


def make_citizen_id(
    region: str = "370102", born: dt.date = dt.date(1950, 1, 1), sequence: int = 1
) -> str:
    """A synthetic, valid ID number (correct check character)."""
    first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
    return first17 + check_character(first17)


SOURCE_SAMPLES: dict[str, dict[str, object]] = {
    "hrss.pensioner.v1": {
        "pensioner_account": "PA-1",
        "scheme": "employee",
        "status": "active",
        "benefit_start": "2008-04-01",
        "monthly_amount_cents": 382000,
    },
    "hrss.face_authentication.v1": {"channel": "app"},
    "health.hospital_visit.v1": {
        "visit_id": "V-1",
        "hospital_code": "H370102001",
        "visit_type": "outpatient",
        "identity_verified": True,
    },
    "health.physical_exam.v1": {"exam_id": "E-1", "institution_code": "C370102007"},
    "health.death_certificate.v1": {
        "certificate_no": "DC-1",
        "date_of_death": "2026-02-27",
        "institution_code": "H370104002",
    },
    "transport.transit_tap.v1": {
        "card_id": "TC-1",
        "mode": "rail",
        "station_code": "JNX",
        "identity_verified": True,
    },
    "civil.funeral.v1": {
        "record_no": "FH-1",
        "date_of_death": "2026-02-27",
        "funeral_home_code": "FH370104",
    },
    "police.household.v1": {"event": "registered", "region_code": "370102"},
    **{
        f"{owner}.retraction.v1": {
            "dataset": dataset,
            "record_id": "0123456789abcdef0123456789abcdef",
            "reason": "published for the wrong person",
        }
        for owner, dataset in (
            ("hrss", "hrss.face_authentication.v1"),
            ("health", "health.death_certificate.v1"),
            ("transport", "transport.transit_tap.v1"),
            ("civil", "civil.funeral.v1"),
            ("police", "police.household.v1"),
        )
    },
}


def sample_input(dataset: str, citizen_id: str, **overrides: object) -> dict[str, object]:
    """A valid agency record of ``dataset`` for ``citizen_id`` (birth date from the ID)."""
    record: dict[str, object] = {
        "citizen_id": citizen_id,
        "occurred_at": "2026-03-02T10:15:00+08:00",
        **SOURCE_SAMPLES[dataset],
    }
    if dataset == "police.household.v1":
        record["birth_date"] = f"{citizen_id[6:10]}-{citizen_id[10:12]}-{citizen_id[12:14]}"
    return record | overrides
