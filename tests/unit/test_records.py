"""The typed datasets: input and bus forms, field rules."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from databus import records as r
from tests.factories import make_citizen_id


def _visit(**overrides: Any) -> dict[str, Any]:
    return {
        "citizen_id": make_citizen_id(),
        "occurred_at": "2026-03-02T10:15:00+08:00",
        "visit_id": "V1",
        "hospital_code": "H1",
        "visit_type": "outpatient",
        "identity_verified": True,
    } | overrides


def _fields(error: ValidationError) -> set[str]:
    return {".".join(map(str, e["loc"])) for e in error.errors()}


def test_valid_visit_is_accepted() -> None:
    visit = r.HospitalVisitInput.model_validate(_visit())
    assert visit.identity_verified is True
    assert visit.occurred_at.utcoffset() is not None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"occurred_at": "2026-03-02T10:15:00"}, "occurred_at"),
        ({"visit_type": "house_call"}, "visit_type"),
        ({"citizen_id": "12345"}, "citizen_id"),
        ({"unexpected": 1}, "unexpected"),
        ({"visit_id": ""}, "visit_id"),
    ],
)
def test_invalid_visit_names_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        r.HospitalVisitInput.model_validate(_visit(**overrides))
    assert field in _fields(caught.value)


def test_missing_field_is_named() -> None:
    data = _visit()
    del data["hospital_code"]
    with pytest.raises(ValidationError) as caught:
        r.HospitalVisitInput.model_validate(data)
    assert _fields(caught.value) == {"hospital_code"}


def test_household_birth_date_must_match_the_id() -> None:
    data = {
        "citizen_id": make_citizen_id(born=__import__("datetime").date(1944, 11, 2)),
        "occurred_at": "2026-01-02T10:00:00+08:00",
        "event": "registered",
        "birth_date": "1944-11-03",
        "region_code": "370103",
    }
    with pytest.raises(ValidationError, match="differs from the date of birth"):
        r.HouseholdInput.model_validate(data)
    data["birth_date"] = "1944-11-02"
    assert r.HouseholdInput.model_validate(data).region_code == "370103"


def test_death_deregistration_needs_a_date() -> None:
    data = {
        "person_ref": "A" * 26,
        "occurred_at": "2026-01-02T10:00:00+08:00",
        "event": "deregistered_death",
        "birth_date": "1944-11-02",
        "region_code": "370103",
    }
    with pytest.raises(ValidationError, match="deregistered_death"):
        r.Household.model_validate(data)
    assert r.Household.model_validate(data | {"date_of_death": "2026-01-01"}).date_of_death


def test_bus_form_has_person_ref_and_no_citizen_id() -> None:
    assert "citizen_id" not in r.HospitalVisit.model_fields
    assert "person_ref" in r.HospitalVisit.model_fields
    shared = set(r.HospitalVisit.model_fields) - {"person_ref"}
    assert shared == set(r.HospitalVisitInput.model_fields) - {"citizen_id"}


def test_money_is_bounded_integer_cents() -> None:
    base = {
        "citizen_id": make_citizen_id(),
        "occurred_at": "2026-01-05T09:00:00+08:00",
        "pensioner_account": "PA1",
        "scheme": "employee",
        "status": "active",
        "benefit_start": "2008-04-01",
    }
    for bad in (-1, 10**13):
        with pytest.raises(ValidationError):
            r.PensionerInput.model_validate(base | {"monthly_amount_cents": bad})


def test_an_id_number_in_a_code_field_is_refused() -> None:
    with pytest.raises(ValidationError, match="looks like a resident ID number") as caught:
        r.HospitalVisitInput.model_validate(_visit(visit_id=make_citizen_id(sequence=7)))
    assert _fields(caught.value) == {"visit_id"}


@pytest.mark.parametrize(
    "disguised",
    [
        pytest.param("370102 19491231 002X", id="separators"),
        pytest.param("370102-1949-1231-002X", id="hyphens"),
        pytest.param("\uff13\uff17\uff10\uff11\uff10\uff12\uff11\uff19\uff14\uff19\uff11\uff12"
                     "\uff13\uff11\uff10\uff10\uff12\uff38", id="full-width"),
        pytest.param("370102\u200b19491231002X", id="zero-width-space"),
        pytest.param("370102\u00a019491231\u00a0002X", id="nbsp"),
        pytest.param("\u0663\u0667\u0660\u0661\u0660\u0662\u0661\u0669\u0664\u0669\u0661\u0662"
                     "\u0663\u0661\u0660\u0660\u0662X", id="arabic-indic"),
    ],
)  # fmt: skip
def test_a_disguised_id_number_in_a_code_field_is_refused(disguised: str) -> None:
    """records.base calls databus.identity.contains_id_number for every code."""
    with pytest.raises(ValidationError, match="looks like a resident ID number") as caught:
        r.HospitalVisitInput.model_validate(_visit(hospital_code=disguised))
    assert _fields(caught.value) == {"hospital_code"}


@pytest.mark.parametrize(
    "code", ["C370102007", "PA-370102-0001", "E-2026-1182", "V-H370102001-00000001"]
)
def test_ordinary_codes_are_accepted(code: str) -> None:
    assert r.HospitalVisitInput.model_validate(_visit(visit_id=code)).visit_id == code
