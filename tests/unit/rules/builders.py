"""Builders for rule tests: bus records as observations, ticks, and compact decisions.

A scenario is a list of steps (an :class:`Observation` or a :class:`Tick`) applied in
order to one person; decisions are compared as compact tuples holding every field that
carries meaning (kind, reason, dates, months, tier, amount, evidence ids).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from databus import records as r
from databus.records import (
    RETRACTION_MODELS,
    ElderlyAllowance,
    FraudAlert,
    PensionStatus,
    retraction_dataset,
)
from databus.rules import (
    Decision,
    Observation,
    PersonState,
    Policy,
    on_event,
    on_reset,
    on_tick,
)

PERSON = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
POLICY = Policy()
SHANGHAI = ZoneInfo("Asia/Shanghai")

When = dt.date | dt.datetime | str


def day(text: str) -> dt.date:
    """A date from ``YYYY-MM-DD``."""
    return dt.date.fromisoformat(text)


def moment(when: When) -> dt.datetime:
    """An aware instant: a date means 10:00 that day in Shanghai."""
    if isinstance(when, str):
        when = dt.datetime.fromisoformat(when) if "T" in when else day(when)
    if isinstance(when, dt.datetime):
        return when
    return dt.datetime(when.year, when.month, when.day, 10, tzinfo=SHANGHAI)


@dataclass(frozen=True)
class Tick:
    """A clock tick in a scenario."""

    as_of: dt.date


def tick(text: str) -> Tick:
    return Tick(day(text))


@dataclass(frozen=True)
class Reset:
    """A clock reset in a scenario: the bus is at ``as_of``, later ticks are withdrawn."""

    as_of: dt.date


def reset(text: str) -> Reset:
    return Reset(day(text))


_NAMES: dict[str, str] = {}


def rid(name: str) -> str:
    """A ``ce_id``-shaped id (32 hex digits, as a retraction must cite) for a readable
    test name; :func:`summary` shows the name again."""
    ident = hashlib.sha256(name.encode()).hexdigest()[:32]
    _NAMES[ident] = name
    return ident


def name_of(ident: str) -> str:
    """The test name of an id made by :func:`rid` (any other id as it is)."""
    return _NAMES.get(ident, ident)


def _observation(
    dataset: str, event_id: str, model: type[r.BusRecord], **fields: Any
) -> Observation:
    record = model(person_ref=PERSON, **fields)
    return Observation(event_id, dataset, record)


def pensioner(
    event_id: str,
    when: When = "2024-05-20",
    benefit_start: str = "2024-06-01",
    status: str = "active",
    account: str = "PA-1",
) -> Observation:
    return _observation(
        "hrss.pensioner.v1",
        event_id,
        r.Pensioner,
        occurred_at=moment(when),
        pensioner_account=account,
        scheme="employee",
        status=status,
        benefit_start=day(benefit_start),
        monthly_amount_cents=382000,
    )


def face(event_id: str, when: When) -> Observation:
    return _observation(
        "hrss.face_authentication.v1",
        event_id,
        r.FaceAuthentication,
        occurred_at=moment(when),
        channel="app",
    )


def exam(event_id: str, when: When) -> Observation:
    return _observation(
        "health.physical_exam.v1",
        event_id,
        r.PhysicalExam,
        occurred_at=moment(when),
        exam_id="E-1",
        institution_code="C370102007",
    )


def visit(event_id: str, when: When, *, verified: bool = False) -> Observation:
    return _observation(
        "health.hospital_visit.v1",
        event_id,
        r.HospitalVisit,
        occurred_at=moment(when),
        visit_id="V-1",
        hospital_code="H370102001",
        visit_type="outpatient",
        identity_verified=verified,
    )


def tap(event_id: str, when: When, *, verified: bool = False) -> Observation:
    return _observation(
        "transport.transit_tap.v1",
        event_id,
        r.TransitTap,
        occurred_at=moment(when),
        card_id="TC-1",
        mode="rail" if verified else "bus",
        station_code="JNX",
        identity_verified=verified,
    )


def certificate(event_id: str, when: When, date_of_death: str) -> Observation:
    return _observation(
        "health.death_certificate.v1",
        event_id,
        r.DeathCertificate,
        occurred_at=moment(when),
        certificate_no="DC-1",
        date_of_death=day(date_of_death),
        institution_code="H370104002",
    )


def funeral(event_id: str, when: When, date_of_death: str) -> Observation:
    return _observation(
        "civil.funeral.v1",
        event_id,
        r.Funeral,
        occurred_at=moment(when),
        record_no="FH-1",
        date_of_death=day(date_of_death),
        funeral_home_code="FH370104",
    )


def household(
    event_id: str,
    when: When,
    event: str = "registered",
    *,
    born: str = "1945-05-10",
    region: str = "370102",
    date_of_death: str | None = None,
) -> Observation:
    return _observation(
        "police.household.v1",
        event_id,
        r.Household,
        occurred_at=moment(when),
        event=event,
        birth_date=day(born),
        region_code=region,
        date_of_death=None if date_of_death is None else day(date_of_death),
    )


def withdraw_id(
    dataset: str, record_id: str, event_id: str, when: When, reason: str = "issued in error"
) -> Observation:
    """The owner's retraction of the record ``record_id`` of ``dataset``."""
    owner = dataset.split(".", 1)[0]
    record = RETRACTION_MODELS[owner][1].model_validate(
        {
            "person_ref": PERSON,
            "occurred_at": moment(when),
            "dataset": dataset,
            "record_id": record_id,
            "reason": reason,
        }
    )
    return Observation(rid(event_id), retraction_dataset(owner), record)


def withdraw(record: Observation, event_id: str, when: When) -> Observation:
    """The owner's retraction of ``record`` (whose id must be made by :func:`rid`)."""
    return withdraw_id(record.dataset, record.id, event_id, when)


Step = Observation | Tick | Reset


def apply(
    state: PersonState, step: Step, policy: Policy = POLICY
) -> tuple[PersonState, list[Decision]]:
    """Apply one step."""
    if isinstance(step, Tick):
        return on_tick(state, step.as_of, policy)
    if isinstance(step, Reset):
        return on_reset(state, step.as_of, policy)
    return on_event(state, step, policy)


def run(
    steps: Iterable[Step], policy: Policy = POLICY, state: PersonState | None = None
) -> tuple[PersonState, list[Decision]]:
    """Apply ``steps`` in order; the final state and every decision."""
    state = PersonState.empty(PERSON) if state is None else state
    decisions: list[Decision] = []
    for step in steps:
        state, more = apply(state, step, policy)
        decisions += more
    return state, decisions


Summary = tuple[Any, ...]


def summary(decision: Decision) -> Summary:
    """The meaningful fields of a decision, as a tuple to compare."""
    record = decision.record
    if isinstance(record, PensionStatus):
        assert decision.dataset == "derived.pension_status.v1"
        return (
            record.decision,
            record.reason,
            record.as_of,
            record.qualified_until,
            tuple(name_of(ref.id) for ref in record.evidence),
            record.date_of_death,
        )
    if isinstance(record, FraudAlert):
        assert decision.dataset == "derived.fraud_alert.v1"
        kind = "alert" if record.kind == "post_mortem_activity" else record.kind
        death, activity = name_of(record.death_evidence.id), name_of(record.activity.id)
        return (kind, record.date_of_death, death, activity)
    assert isinstance(record, ElderlyAllowance)
    assert decision.dataset == "derived.elderly_allowance.v1"
    return (
        record.decision,
        record.reason,
        record.tier,
        record.monthly_amount_cents,
        record.effective_month,
    )


def summaries(steps: Iterable[Step], policy: Policy = POLICY) -> list[Summary]:
    return [summary(decision) for decision in run(steps, policy)[1]]


# Expected decisions, written the way the table of DOMAIN.md reads.


def confirmed(as_of: str, qualified_until: str, *ids: str) -> Summary:
    return ("confirmed", "evidence", day(as_of), day(qualified_until), ids, None)


def resumed(as_of: str, qualified_until: str, *ids: str) -> Summary:
    return ("resumed", "evidence", day(as_of), day(qualified_until), ids, None)


def reminder(as_of: str, qualified_until: str) -> Summary:
    return ("reminder", "no_evidence", day(as_of), day(qualified_until), (), None)


def suspended(as_of: str, qualified_until: str, *ids: str) -> Summary:
    return ("suspended", "no_evidence", day(as_of), day(qualified_until), ids, None)


def resumed_retracted(as_of: str, qualified_until: str, *ids: str) -> Summary:
    """A pension reinstated because what suspended it was withdrawn."""
    return ("resumed", "retracted", day(as_of), day(qualified_until), ids, None)


def deceased(date_of_death: str, qualified_until: str, *ids: str) -> Summary:
    dod = day(date_of_death)
    return ("suspended", "deceased", dod, day(qualified_until), ids, dod)


def alert(date_of_death: str, death_id: str, activity_id: str) -> Summary:
    return ("alert", day(date_of_death), death_id, activity_id)


def alert_withdrawn(date_of_death: str, death_id: str, activity_id: str) -> Summary:
    return ("withdrawn", day(date_of_death), death_id, activity_id)


_AMOUNTS = {"80-89": 10000, "90-99": 20000, "100+": 50000}


def granted(tier: str, month: str) -> Summary:
    return ("granted", "age", tier, _AMOUNTS[tier], month)


def tier_changed(tier: str, month: str) -> Summary:
    return ("tier_changed", "age", tier, _AMOUNTS[tier], month)


def stopped(reason: str, tier: str, month: str) -> Summary:
    return ("stopped", reason, tier, _AMOUNTS[tier], month)


def regranted(tier: str, month: str) -> Summary:
    """An allowance granted again because what stopped it was withdrawn."""
    return ("granted", "retracted", tier, _AMOUNTS[tier], month)


def tier_back(tier: str, month: str) -> Summary:
    """An allowance moved back to ``tier`` because the tick that raised it was withdrawn."""
    return ("tier_changed", "retracted", tier, _AMOUNTS[tier], month)
