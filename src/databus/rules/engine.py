"""The entry points: one observation, one tick, a reset, and when a person is next due.

Every source dataset the rules read is routed here to the pension rules
(:mod:`databus.rules.pension`), the fraud alerts (:mod:`databus.rules.alerts`), the
allowance rules (:mod:`databus.rules.allowance`) and, for the owners' retraction
datasets, to :mod:`databus.rules.retraction`. Datasets the rules do not read are
ignored, so a worker may feed everything it consumes.

Redeliveries are harmless: records of the pensioner roster and of the household
registry apply only when newer than the one in force, death records are recognised by
id, evidence of life is recognised in the held log (and is monotone otherwise), a
retraction by the withdrawn ids kept, and a withdrawn record does not count again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Final, TypeVar

from pydantic import BaseModel

from databus.records import (
    RETRACTION_MODELS,
    DeathCertificate,
    FaceAuthentication,
    Funeral,
    HospitalVisit,
    Household,
    Pensioner,
    PhysicalExam,
    Record,
    RetractionFields,
    TransitTap,
    retraction_dataset,
)
from databus.rules import allowance, allowance_undo, pension, pension_undo, retraction
from databus.rules.decision import Decision, Observation
from databus.rules.evidence import DATASET_CODES, Ref
from databus.rules.policy import Policy
from databus.rules.state import DeathState, PersonState

Outcome = tuple[PersonState, list[Decision]]
_Record = TypeVar("_Record", bound=BaseModel)


def _expect(observation: Observation, kind: type[_Record]) -> _Record:
    record = observation.record
    if not isinstance(record, kind):
        raise TypeError(
            f"{observation.dataset} event {observation.id} carries a "
            f"{type(record).__name__}, expected {kind.__name__}"
        )
    return record


def _life(
    state: PersonState, observation: Observation, record: Record, weak: bool, policy: Policy
) -> Outcome:
    return pension.on_life(
        state, observation.id, observation.dataset, record.occurred_at, policy, weak=weak
    )


def _face_authentication(state: PersonState, observation: Observation, policy: Policy) -> Outcome:
    return _life(state, observation, _expect(observation, FaceAuthentication), False, policy)


def _physical_exam(state: PersonState, observation: Observation, policy: Policy) -> Outcome:
    return _life(state, observation, _expect(observation, PhysicalExam), False, policy)


def _hospital_visit(state: PersonState, observation: Observation, policy: Policy) -> Outcome:
    record = _expect(observation, HospitalVisit)
    return _life(state, observation, record, not record.identity_verified, policy)


def _transit_tap(state: PersonState, observation: Observation, policy: Policy) -> Outcome:
    record = _expect(observation, TransitTap)
    return _life(state, observation, record, not record.identity_verified, policy)


def _death_certificate(state: PersonState, observation: Observation, policy: Policy) -> Outcome:
    record = _expect(observation, DeathCertificate)
    return _death(state, observation, record, record.date_of_death, policy)


def _funeral(state: PersonState, observation: Observation, policy: Policy) -> Outcome:
    record = _expect(observation, Funeral)
    return _death(state, observation, record, record.date_of_death, policy)


def _household(state: PersonState, observation: Observation, policy: Policy) -> Outcome:
    record = _expect(observation, Household)
    decisions: list[Decision] = []
    if record.event == "deregistered_death" and record.date_of_death is not None:
        state, decisions = _death(state, observation, record, record.date_of_death, policy)
    state, more = allowance.on_household(state, observation.id, record, policy)
    return state, decisions + more


def _pensioner(state: PersonState, observation: Observation, policy: Policy) -> Outcome:
    return pension.on_pensioner(state, observation.id, _expect(observation, Pensioner), policy)


def _death(
    state: PersonState,
    observation: Observation,
    record: Record,
    date_of_death: dt.date,
    policy: Policy,
) -> Outcome:
    """The first death record fixes the date of death; later ones only add their id
    and date (which dates the death if the records before them are withdrawn)."""
    occurred_at = record.occurred_at.isoformat()
    ref: Ref = (observation.id, DATASET_CODES[observation.dataset], occurred_at)
    death = state.death
    if death is not None:
        if any(known[0] == ref[0] for known in death.refs):
            return state, []
        added = DeathState(
            death.date_of_death,
            (*death.refs, ref),
            (*death.dates, date_of_death),
            death.alerted,
        )
        return state.with_death(added), []
    state = state.with_death(DeathState(date_of_death, (ref,), (date_of_death,)))
    state, decisions = pension.on_death(state, policy)
    state, more = allowance.on_death(state, policy)
    return state, decisions + more


def _retraction(state: PersonState, observation: Observation, policy: Policy) -> Outcome:
    owner = observation.dataset.split(".", 1)[0]
    record = _expect(observation, RETRACTION_MODELS[owner][1])
    assert isinstance(record, RetractionFields)  # noqa: S101 - every retraction model is one
    return retraction.on_retraction(state, observation.id, observation.dataset, record, policy)


_HANDLERS: Final[dict[str, Callable[[PersonState, Observation, Policy], Outcome]]] = {
    **{retraction_dataset(owner): _retraction for owner in RETRACTION_MODELS},
    "hrss.pensioner.v1": _pensioner,
    "hrss.face_authentication.v1": _face_authentication,
    "health.physical_exam.v1": _physical_exam,
    "health.hospital_visit.v1": _hospital_visit,
    "transport.transit_tap.v1": _transit_tap,
    "health.death_certificate.v1": _death_certificate,
    "civil.funeral.v1": _funeral,
    "police.household.v1": _household,
}

RULE_INPUTS: Final = frozenset(_HANDLERS)
"""The source datasets the rules read; events of any other dataset are ignored."""


def on_event(
    state: PersonState, observation: Observation, policy: Policy
) -> tuple[PersonState, list[Decision]]:
    """Apply one source event to a person's state; returns the new state and decisions.

    A record withdrawn by its agency (its retraction was seen first, or it is delivered
    again) does not count."""
    handler = _HANDLERS.get(observation.dataset)
    if handler is None:
        return state, []
    if state.withdrawn and (DATASET_CODES.get(observation.dataset), observation.id) in (
        state.withdrawn
    ):
        return state, []
    return handler(state, observation, policy)


def on_tick(
    state: PersonState, as_of: dt.date, policy: Policy
) -> tuple[PersonState, list[Decision]]:
    """Let the local day ``as_of`` begin for one person: reminders, suspensions, grants."""
    state, decisions = pension.on_tick(state, as_of, policy)
    state, more = allowance.on_tick(state, as_of, policy)
    return state, decisions + more


def affected_by_reset(state: PersonState, as_of: dt.date) -> bool:
    """Whether a reset to ``as_of`` changes anything for this person (cheap: a worker
    asks it of every person of the partition and skips the others)."""
    return pension_undo.affected_by_reset(state, as_of) or allowance_undo.affected_by_reset(
        state, as_of
    )


def on_reset(
    state: PersonState, as_of: dt.date, policy: Policy
) -> tuple[PersonState, list[Decision]]:
    """The bus is at day ``as_of``: withdraw what every tick for a later day decided
    (:mod:`databus.rules.pension_undo`, :mod:`databus.rules.allowance_undo`). Applying it
    twice changes nothing."""
    if not affected_by_reset(state, as_of):
        return state, []
    state = state.with_withdrawn(state.withdrawn, state.epoch + 1)
    state, decisions = pension_undo.on_reset(state, as_of, policy)
    state, more = allowance_undo.on_reset(state, as_of, policy)
    return state, decisions + more


def next_due(state: PersonState, policy: Policy) -> dt.date | None:
    """The earliest tick day at which :func:`on_tick` could decide something for this
    person, or None when only a new event can change that. A date in the past means
    "due at the next tick"."""
    dates = [
        due
        for due in (pension.next_due(state, policy), allowance.next_due(state, policy))
        if due is not None
    ]
    return min(dates) if dates else None
