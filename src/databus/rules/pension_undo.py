"""What withdrawn records and a clock reset do to a pension (docs/rules.md,
"Retractions" and "Clock resets").

Nothing is deleted: new decisions reinstate what the withdrawn record or tick caused,
cite the withdrawn record and the retraction as evidence, and have ``as_of`` the
retraction's local day. Cases, and what we decided:

- *The death withdrawn* (its last record withdrawn): a pension suspended for it is no
  longer final. Tracked, it gets ``resumed`` / ``retracted`` with ``qualified_until`` as
  it stands, so that the next tick reminds or suspends for lack of evidence as usual;
  if a ``suspended`` / ``no_evidence`` was in force before the death, it is stated
  again instead (same ``as_of``: the pension stays suspended, now for lack of
  evidence). Then the latest qualifying evidence seen meanwhile counts as if it arrived
  now (``confirmed`` or ``resumed`` / ``evidence`` when it raises ``qualified_until``):
  it is real evidence, and often what raised the alerts against the living person. A
  pension terminated meanwhile is only made not final.
- *The date of death changed* (the record that fixed it was withdrawn, others remain):
  the suspension is stated again, ``suspended`` / ``deceased`` with the date now in force
  and the remaining death records (and the retraction) as evidence.
- *Evidence of life withdrawn*: what it confirmed or resumed stands, and
  ``qualified_until`` is never lowered by a retraction: lowering a deadline after the
  fact could suspend a pension without the reminder the rules promise, and the next
  cycle needs fresh evidence anyway. It leaves the held log (so no weak run counts it)
  and is no longer the latest qualifying evidence kept for a later pensioner record
  (the latest one the held log still shows takes its place).
- *The pensioner record in force withdrawn* restores the one in force before it (one is
  kept), or none: not tracked, as if never received; ``qualified_until`` stays as it
  is. Tracked again (an ``active`` record restored in place of a ``terminated`` one),
  the pension is decided as when an ``active`` record arrives: a known death suspends
  it, the latest qualifying evidence counts. No longer tracked, nothing is decided (as
  for ``terminated``). An older record withdrawn changes nothing.
- *A reset to day D*: a ``suspended`` / ``no_evidence`` by a tick after D gets
  ``resumed`` / ``retracted`` (``as_of`` = D); the next tick suspends it again if it is
  overdue then, with that tick's day. Reminders already sent stand. A pension suspended
  for a death, or terminated, has the withdrawn suspension forgotten silently.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from databus.rules import pension
from databus.rules.dates import moment_of
from databus.rules.decision import Decision, Withdrawal
from databus.rules.evidence import Ref
from databus.rules.policy import Policy
from databus.rules.state import NO_RECORD, DeathState, PersonState


def death_withdrawn(
    state: PersonState, withdrawal: Withdrawal, withdrawn: Ref, policy: Policy
) -> tuple[PersonState, list[Decision]]:
    """The death is undone (``state.death`` is None now): reinstate the pension."""
    current = state.pension
    if current is None or not current.final:
        return state, []
    state = state.with_pension(replace(current, final=False))
    if not current.active:
        return state, []
    cited = withdrawal.cited(withdrawn)
    if current.suspended_on is None:
        decision = pension.pension_status(
            state,
            current,
            policy,
            decision="resumed",
            reason="retracted",
            as_of=withdrawal.day,
            refs=cited,
            identity=("resumed", *withdrawal.identity),
        )
    else:
        deadline = current.qualified_until.isoformat()
        decision = pension.pension_status(
            state,
            current,
            policy,
            decision="suspended",
            reason="no_evidence",
            as_of=current.suspended_on,
            refs=cited,
            identity=("suspended", "no_evidence", deadline, *withdrawal.identity),
        )
    decisions = [decision]
    if state.life is not None:
        state, more = pension.qualify(state, state.life.day, state.life.refs, policy)
        decisions += more
    return state, decisions


def death_redated(
    state: PersonState, before: DeathState, withdrawal: Withdrawal, policy: Policy
) -> list[Decision]:
    """The date of death changed: state the suspension again with the new date."""
    current, death = state.pension, state.death
    if current is None or not current.final or death is None:
        return []
    if death.date_of_death == before.date_of_death:
        return []
    return [
        pension.pension_status(
            state,
            current,
            policy,
            decision="suspended",
            reason="deceased",
            as_of=death.date_of_death,
            refs=(*death.refs, withdrawal.retraction),
            identity=("suspended", "deceased", *withdrawal.identity),
            date_of_death=death.date_of_death,
        )
    ]


def pensioner_withdrawn(
    state: PersonState, withdrawal: Withdrawal, policy: Policy
) -> tuple[PersonState, list[Decision], Ref | None]:
    """A withdrawn pensioner record; returns the new state, the decisions, and the
    withdrawn record's reference (None if it was not found)."""
    current = state.pension
    record_id = withdrawal.record_id
    if current is None:
        return state, [], None
    previous = current.previous
    if previous is not None and previous.record_id == record_id:
        ref = (record_id, withdrawal.code, moment_of(previous.record_at).isoformat())
        return state.with_pension(replace(current, previous=None)), [], ref
    if current.record_id != record_id:
        return state, [], None
    ref = (record_id, withdrawal.code, moment_of(current.record_at).isoformat())
    was_tracked = state.tracked
    if previous is None:
        restored = replace(current, record_at=NO_RECORD, record_id="", active=False)
    else:
        restored = replace(
            current,
            record_at=previous.record_at,
            record_id=previous.record_id,
            account=previous.account,
            active=previous.active,
            previous=None,
        )
    state, decisions = pension.tracking(
        state.with_pension(restored), was_tracked=was_tracked, policy=policy
    )
    return state, decisions, ref


def affected_by_reset(state: PersonState, as_of: dt.date) -> bool:
    """Whether a tick after ``as_of`` suspended the pension for lack of evidence."""
    current = state.pension
    return current is not None and current.suspended_on is not None and current.suspended_on > as_of


def on_reset(
    state: PersonState, as_of: dt.date, policy: Policy
) -> tuple[PersonState, list[Decision]]:
    """Withdraw a suspension for lack of evidence made by a tick after ``as_of``."""
    current = state.pension
    if current is None or not affected_by_reset(state, as_of):
        return state, []
    lifted = replace(current, suspended_on=None)
    state = state.with_pension(lifted)
    if not current.active or current.final or state.death is not None:
        return state, []
    decision = pension.pension_status(
        state,
        lifted,
        policy,
        decision="resumed",
        reason="retracted",
        as_of=as_of,
        identity=("resumed", "retracted", "reset", as_of.isoformat()),
    )
    return state, [decision]
