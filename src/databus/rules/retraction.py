"""Retractions: an agency withdraws one of its records, by id (``<owner>.retraction.v1``).

A retraction changes what the withdrawn record caused, by new decisions whose reason or
kind says so (``retracted``, ``withdrawn``); nothing is deleted from the log. What each
rule does is in :mod:`databus.rules.pension_undo`, :mod:`databus.rules.allowance_undo`
and :mod:`databus.rules.alerts`, and in docs/rules.md. Here, what they share:

- *A retraction is matched by dataset and id*: the withdrawn record must be of the
  dataset the retraction names (always one of the owner's, by its contract), so one
  agency can never withdraw another agency's record by citing its id.
- *Idempotent and safe to redeliver*: the withdrawn ids are kept (the last
  :data:`~databus.rules.state.MAX_WITHDRAWN`), a retraction seen again decides nothing,
  and so does one of a record the state never saw or no longer holds (beyond the held
  log, say). That record, if it arrives later (topics are read at different speeds),
  or a withdrawn record delivered again, does not count: it is ignored like a
  redelivery.
- *Death evidence withdrawn* (a death certificate, a funeral record or a household
  ``deregistered_death``) leaves the death's evidence. If other death records remain
  the death stands, dated by the earliest-arrived of them (each record's own date is
  kept); if the date changes, the suspension, the allowance's stop and the fraud alerts
  follow the new date. If none remains the death is undone: the pension is reinstated,
  the allowance granted again from the month its stop took effect (if the person is a
  resident, and no move out stops it earlier), and every alert of that death withdrawn.
- *Evidence of life withdrawn* (face scan, exam, visit, tap) leaves the held log, its
  alerts are withdrawn, and it is no longer the latest qualifying evidence kept.
- *Decision ids* of a retraction's decisions hash the withdrawn record's id, and the
  person's epoch moves on (:attr:`~databus.rules.state.PersonState.epoch`), so that a
  decision made again later (a real death after a withdrawn one) has a new id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Final

from databus.records import RetractionFields
from databus.rules import alerts, allowance, allowance_undo, pension_undo
from databus.rules.dates import day_of_time, local_day
from databus.rules.decision import Decision, Withdrawal
from databus.rules.evidence import DATASET_CODES, LIFE_DATASETS, Ref
from databus.rules.policy import Policy
from databus.rules.state import MAX_WITHDRAWN, DeathState, LifeState, PersonState

Found = tuple[PersonState, list[Decision], bool]
"""A withdrawal's outcome: the state, the decisions, whether the record was found."""

_HOUSEHOLD: Final = DATASET_CODES["police.household.v1"]


def on_retraction(
    state: PersonState, event_id: str, dataset: str, record: RetractionFields, policy: Policy
) -> tuple[PersonState, list[Decision]]:
    """Apply a retraction (``dataset`` is its own dataset, ``record`` its bus record)."""
    withdrawn_dataset: str = record.dataset  # type: ignore[attr-defined]
    key = (DATASET_CODES[withdrawn_dataset], record.record_id)
    if key in state.withdrawn:
        return state, []
    withdrawn = (*state.withdrawn, key)[-MAX_WITHDRAWN:]
    logged = state.with_withdrawn(withdrawn, state.epoch)
    withdrawal = Withdrawal(
        record.record_id,
        key[0],
        (event_id, DATASET_CODES[dataset], record.occurred_at.isoformat()),
        local_day(record.occurred_at, policy.zone),
    )
    handler = _HANDLERS[withdrawn_dataset]
    changed, decisions, found = handler(
        logged.with_withdrawn(withdrawn, state.epoch + 1), withdrawal, policy
    )
    return (changed, decisions) if found else (logged, [])


def _life(state: PersonState, withdrawal: Withdrawal, policy: Policy) -> Found:
    """Evidence of life withdrawn: out of the held log, its alert withdrawn, no longer
    the latest qualifying evidence."""
    record_id, code = withdrawal.record_id, withdrawal.code
    held, death, life = state.held, state.death, state.life
    index = held.find(record_id, code)
    alerted = None if death is None else _find(death.alerted, record_id, code)
    in_life = life is not None and _find(life.refs, record_id, code) is not None
    if index is None and alerted is None and not in_life:
        return state, [], False
    decisions: list[Decision] = []
    if index is not None:
        held = held.without(index)
    if death is not None and alerted is not None:
        activity = death.alerted[alerted]
        decisions.append(alerts.withdrawn(state, death, activity, record_id, policy))
        rest = (*death.alerted[:alerted], *death.alerted[alerted + 1 :])
        state = state.with_death(DeathState(death.date_of_death, death.refs, death.dates, rest))
    if in_life:
        latest = held.latest_qualifying(policy.weak_events, policy.weak_window_days)
        life = None if latest is None else LifeState(dt.date.fromordinal(latest[0]), latest[1])
    return state.with_evidence(life, held), decisions, True


def _death_record(state: PersonState, withdrawal: Withdrawal, policy: Policy) -> Found:
    """A death certificate or funeral record withdrawn."""
    return death_withdrawn(state, withdrawal, policy)


def _household(state: PersonState, withdrawal: Withdrawal, policy: Policy) -> Found:
    """A household record withdrawn: its residence part, then its death part."""
    death = state.death
    deregistration = (
        death is not None and _find(death.refs, withdrawal.record_id, _HOUSEHOLD) is not None
    )
    state, decisions, ref = allowance_undo.household_withdrawn(
        state, withdrawal, policy, deregistration=deregistration
    )
    if not deregistration:
        return state, decisions, ref is not None
    state, more, _ = death_withdrawn(state, withdrawal, policy)
    return state, decisions + more, True


def _pensioner(state: PersonState, withdrawal: Withdrawal, policy: Policy) -> Found:
    state, decisions, ref = pension_undo.pensioner_withdrawn(state, withdrawal, policy)
    return state, decisions, ref is not None


def death_withdrawn(state: PersonState, withdrawal: Withdrawal, policy: Policy) -> Found:
    """A death record leaves the death's evidence; the death stands on the others (dated
    by the earliest-arrived of them) or, with none left, is undone."""
    death = state.death
    index = None if death is None else _find(death.refs, withdrawal.record_id, withdrawal.code)
    if death is None or index is None:
        return state, [], False
    withdrawn = death.refs[index]
    refs = (*death.refs[:index], *death.refs[index + 1 :])
    dates = (*death.dates[:index], *death.dates[index + 1 :])
    if refs and index > 0:
        return (
            state.with_death(DeathState(death.date_of_death, refs, dates, death.alerted)),
            [],
            True,
        )
    decisions = [
        alerts.withdrawn(state, death, a, withdrawal.record_id, policy) for a in death.alerted
    ]
    if not refs:
        state = state.with_death(None)
        state, more = pension_undo.death_withdrawn(state, withdrawal, withdrawn, policy)
        decisions = more + decisions
    else:
        state = state.with_death(DeathState(dates[0], refs, dates))
        decisions = pension_undo.death_redated(state, death, withdrawal, policy) + decisions
        state, more = _alerts_again(state, death.alerted, policy)
        decisions += more
    state, more = allowance.reconcile(state, policy, identity=withdrawal.identity)
    return state, decisions + more, True


def _alerts_again(
    state: PersonState, alerted: tuple[Ref, ...], policy: Policy
) -> tuple[PersonState, list[Decision]]:
    """Alerts under the death now in force, for the activity alerted before and still
    dated after the death, and (a tracked pensioner's) held activity now after it."""
    death = state.death
    assert death is not None  # noqa: S101 - called with a death in force
    candidates = list(alerted)
    if state.tracked:
        known = {ref[0] for ref in candidates}
        candidates += [
            ref for ref in state.held.after(death.date_of_death.toordinal()) if ref[0] not in known
        ]
    decisions: list[Decision] = []
    for activity in candidates:
        if day_of_time(activity[2], policy.zone) > death.date_of_death:
            death, alert = alerts.raised(state, death, activity, policy)
            if alert is not None:
                decisions.append(alert)
    return state.with_death(death), decisions


def _find(refs: tuple[Ref, ...], record_id: str, code: int) -> int | None:
    for index, ref in enumerate(refs):
        if ref[0] == record_id and ref[1] == code:
            return index
    return None


_HANDLERS: Final[dict[str, Callable[[PersonState, Withdrawal, Policy], Found]]] = {
    **dict.fromkeys(LIFE_DATASETS, _life),
    "health.death_certificate.v1": _death_record,
    "civil.funeral.v1": _death_record,
    "police.household.v1": _household,
    "hrss.pensioner.v1": _pensioner,
}
