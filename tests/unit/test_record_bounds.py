"""The contract's bounds on dates and instants, one row per bound.

Each row is a record the publisher accepted before (and the worker then died on, or
decided nonsense from) and now refuses, naming the field.
"""

from __future__ import annotations

import datetime as dt

import orjson
import pytest

from databus.catalog import CATALOG
from databus.client.intake import Intake
from databus.identity import Pseudonymizer
from databus.records import ClockTick
from databus.records.base import FUTURE_SKEW, dated_after
from databus.wire import Message, Rejection
from tests.factories import make_citizen_id, sample_input

KEY = b"record-bounds-test-key-of-32-bytes-or-more"
BORN = dt.date(1950, 5, 1)
CITIZEN = make_citizen_id("370102", BORN, 31)


def _check(dataset: str, **fields: object) -> Message | Rejection:
    intake = Intake(CATALOG.get(dataset), Pseudonymizer(KEY))
    return intake.from_json(orjson.dumps(sample_input(dataset, CITIZEN, **fields)))


@pytest.mark.parametrize(
    ("case", "dataset", "fields", "field", "message"),
    [
        ("a visit in 9999", "health.hospital_visit.v1",
         {"occurred_at": "9999-12-31T23:59:59+08:00"}, "occurred_at", "between 1900-01-01"),
        ("a visit in year 1", "health.hospital_visit.v1",
         {"occurred_at": "0001-01-01T00:00:00+08:00"}, "occurred_at", "between 1900-01-01"),
        ("9999 in the last time zone", "hrss.face_authentication.v1",
         {"occurred_at": "9999-12-31T23:59:59-14:00"}, "occurred_at", "between 1900-01-01"),
        ("a benefit starting in 9999", "hrss.pensioner.v1",
         {"benefit_start": "9999-12-31"}, "benefit_start", "between 1900-01-01"),
        ("a benefit announced two years ahead", "hrss.pensioner.v1",
         {"occurred_at": "2026-01-05T09:00:00+08:00", "benefit_start": "2028-01-05"},
         "benefit_start", "more than a year after occurred_at"),
        ("a benefit before birth", "hrss.pensioner.v1",
         {"benefit_start": "1949-01-01"}, "benefit_start", "before the date of birth"),
        ("a death in 9999", "health.death_certificate.v1",
         {"date_of_death": "9999-12-31"}, "date_of_death", "between 1900-01-01"),
        ("a death after its certificate", "health.death_certificate.v1",
         {"occurred_at": "2026-03-02T10:15:00+08:00", "date_of_death": "2026-03-05"},
         "date_of_death", "after occurred_at"),
        ("a death before birth", "civil.funeral.v1",
         {"date_of_death": "1949-12-31"}, "date_of_death", "before the date of birth"),
        ("a move out in 9999", "police.household.v1",
         {"event": "moved_out", "occurred_at": "9999-12-31T23:59:59+08:00"},
         "occurred_at", "between 1900-01-01"),
        ("a deregistration dated before the birth", "police.household.v1",
         {"event": "deregistered_death", "date_of_death": "1949-01-01"},
         "date_of_death", "before the date of birth"),
        ("a record before the person was born", "health.physical_exam.v1",
         {"occurred_at": "1949-06-01T09:00:00+08:00"}, "occurred_at", "before the date of birth"),
    ],
)  # fmt: skip
def test_the_publisher_refuses_what_the_contract_bounds(
    case: str, dataset: str, fields: dict[str, object], field: str, message: str
) -> None:
    outcome = _check(dataset, **fields)
    assert isinstance(outcome, Rejection), case
    assert [r.field for r in outcome.reasons] == [field], case
    assert message in outcome.reasons[0].message, case


@pytest.mark.parametrize(
    ("case", "dataset", "fields"),
    [
        ("the first day of the contract", "health.hospital_visit.v1",
         {"occurred_at": "1950-05-01T00:00:00+08:00"}),
        ("a death reported the day after, across time zones", "health.death_certificate.v1",
         {"occurred_at": "2026-03-01T23:30:00-02:00", "date_of_death": "2026-03-02"}),
        ("a benefit announced eleven months ahead", "hrss.pensioner.v1",
         {"occurred_at": "2026-01-05T09:00:00+08:00", "benefit_start": "2026-12-01"}),
        ("a household record of a death on the record's day", "police.household.v1",
         {"event": "deregistered_death", "date_of_death": "2026-03-02"}),
    ],
)  # fmt: skip
def test_what_lies_within_the_bounds_is_accepted(
    case: str, dataset: str, fields: dict[str, object]
) -> None:
    assert isinstance(_check(dataset, **fields), Message), case


def test_the_bus_form_checks_a_death_against_its_own_birth_date() -> None:
    """A raw client writes the bus form: no citizen_id, but the record's own birth date."""
    model = CATALOG.get("police.household.v1").bus_model
    with pytest.raises(ValueError, match="is before birth_date"):
        model.model_validate(
            {"person_ref": "A" * 26, "occurred_at": "2026-03-02T10:15:00+08:00",
             "event": "deregistered_death", "birth_date": "1950-05-01", "region_code": "370102",
             "date_of_death": "1949-01-01"}
        )  # fmt: skip


def test_a_tick_is_bounded_too() -> None:
    with pytest.raises(ValueError, match="between 1900-01-01"):
        ClockTick.model_validate({"as_of": "9999-12-31"})
    with pytest.raises(ValueError, match="needs a reason"):
        ClockTick.model_validate({"as_of": "2026-06-01", "reset": True})


def test_dated_after_allows_the_skew_and_no_more() -> None:
    record = CATALOG.get("hrss.face_authentication.v1").bus_model.model_validate(
        {"person_ref": "A" * 26, "occurred_at": "2026-06-01T00:05:00+00:00", "channel": "app"}
    )
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    assert not dated_after(record, now)  # type: ignore[arg-type]
    assert dated_after(record, now - dt.timedelta(seconds=1))  # type: ignore[arg-type]
    assert FUTURE_SKEW == dt.timedelta(minutes=5)
