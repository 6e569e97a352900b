"""Silent pension authentication (``pension/1``; docs/rules.md, "Pension").

A tracked pensioner (latest ``hrss.pensioner`` record ``active``) stays qualified until
``qualified_until``; qualifying evidence of life pushes it to ``day(e) + 12 months``,
ticks remind and suspend, death suspends for good (unless its records are withdrawn).

Cases the rules' source leaves open, and what we decided:

- *"Within 30 days"* is read the same way everywhere, inclusively, as for the reminder
  window (``qualified_until - 30 days <= D``): a weak run counts when its latest day is
  at most 30 days after its earliest; a ``confirmed`` is withheld when the previous one
  is at most 30 days older.
- *A weak run* is made of weak events only (a strong event qualifies by itself) and is
  cited by its three events: on each of its days the latest event that arrived, on the
  run's latest day and the nearest days before it. It counts once its last event
  arrives, in whatever order the three arrive.
- *A ``resumed`` counts as a ``confirmed``* for that quiet period: it already told
  consumers the person is alive on that day.
- *Suppressed confirmations still count*: evidence in the quiet period raises
  ``qualified_until`` silently; the reminder and the suspension follow the raised value.
- *Late evidence for a suspended pension* resumes it only if the raised
  ``qualified_until`` reaches the day of the suspension (the suspension would not have
  happened with that evidence); otherwise ``qualified_until`` is raised silently and the
  suspension stands, so that old evidence does not make a pension flip on and off.
- *Evidence seen before the pensioner record* (topics are read in no fixed order) is not
  lost: the latest qualifying evidence of everyone is kept (``LifeState``); when the
  person becomes tracked it counts as if it had arrived afterwards (``confirmed`` if it
  raises ``qualified_until``). Nothing else is decided for an untracked person.
- *Which pensioner record is the latest* is decided by ``occurred_at`` (then ``ce_id``),
  not by arrival: an old ``active`` record delivered after a newer ``terminated`` one
  changes nothing (it is only kept as the one before it, should that be withdrawn),
  and a redelivered record is ignored. The decisions name the account of the latest
  record.
- *``terminated`` then ``active`` again* resumes tracking with what was kept;
  ``qualified_until`` never goes down, also when ``benefit_start`` changes.
- *A deadline already past when tracking starts* (an old ``benefit_start`` and no
  evidence) is suspended at the next tick, as the table says; there is no reminder for
  a window that lies in the past. Loading a roster therefore needs the last year of
  face authentications on the bus first, or whoever lacks evidence is suspended.
- *``as_of`` of ``suspended`` / ``deceased``* is ``date_of_death``: the pension is
  suspended from the death, whichever of death and pensioner record arrives first, so
  the decision (and its id) is the same in either order.
- *Evidence dated after the death* never confirms or resumes anything while the death
  stands (the fraud alerts it raises: :mod:`databus.rules.alerts`).

What retractions and clock resets do to a pension: :mod:`databus.rules.pension_undo`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from databus.records import Pensioner, PensionStatus
from databus.rules import alerts
from databus.rules.dates import add_months, instant
from databus.rules.decision import PENSION_STATUS, Decision, decision_id, epoch_tag
from databus.rules.evidence import DATASET_CODES, Ref, evidence_ref, retained
from databus.rules.policy import Policy
from databus.rules.state import LifeState, PensionState, PersonState, PreviousPensioner


def on_pensioner(
    state: PersonState, event_id: str, record: Pensioner, policy: Policy
) -> tuple[PersonState, list[Decision]]:
    """Apply a pensioner record: start, update or stop tracking."""
    at = instant(record.occurred_at)
    pension = state.pension
    active = record.status == "active"
    if pension is not None and (at, event_id) <= (pension.record_at, pension.record_id):
        # Older than the record in force (or a redelivery): it decides nothing, but is
        # the one to restore if the record in force is withdrawn.
        previous = pension.previous
        if (at, event_id) == (pension.record_at, pension.record_id) or (
            previous is not None and (at, event_id) <= (previous.record_at, previous.record_id)
        ):
            return state, []
        older = PreviousPensioner(at, event_id, record.pensioner_account, active)
        return state.with_pension(replace(pension, previous=older)), []
    start = add_months(record.benefit_start, policy.cycle_months)
    if pension is None:
        updated = PensionState(at, event_id, record.pensioner_account, active, start)
    else:
        previous = None
        if pension.record_id:
            previous = PreviousPensioner(
                pension.record_at, pension.record_id, pension.account, pension.active
            )
        updated = replace(
            pension,
            record_at=at,
            record_id=event_id,
            account=record.pensioner_account,
            active=active,
            qualified_until=max(pension.qualified_until, start),
            previous=previous,
        )
    was_tracked = state.tracked
    return tracking(state.with_pension(updated), was_tracked=was_tracked, policy=policy)


def tracking(
    state: PersonState, *, was_tracked: bool, policy: Policy
) -> tuple[PersonState, list[Decision]]:
    """What follows when the record in force makes a pension tracked and it was not: a
    death already known suspends it, and the latest qualifying evidence already seen
    counts as if it arrived now."""
    pension = state.pension
    if pension is None or not pension.active or was_tracked or pension.final:
        return state, []
    if state.death is not None:
        return deceased(state, policy)
    if state.life is not None:
        return qualify(state, state.life.day, state.life.refs, policy)
    return state, []


def on_life(
    state: PersonState,
    event_id: str,
    dataset: str,
    occurred_at: dt.datetime,
    policy: Policy,
    *,
    weak: bool,
) -> tuple[PersonState, list[Decision]]:
    """Apply one event of evidence of life (strong, or weak when ``weak``)."""
    day = occurred_at.astimezone(policy.zone).date()
    ordinal = day.toordinal()
    held = state.held
    if held.holds(ordinal, event_id):
        return state, []
    time = occurred_at.isoformat()
    code = DATASET_CODES[dataset]
    ref: Ref = (event_id, code, time)
    tracked = state.tracked
    death = state.death
    decisions: list[Decision] = []
    if death is not None and tracked and day > death.date_of_death and held.remembers(ordinal):
        death, alert = alerts.raised(state, death, ref, policy)
        if alert is not None:
            decisions.append(alert)

    logged = held.inserted(ordinal, code * 2 + (1 if weak else 0), event_id, time)
    life = state.life
    floor = life.day.toordinal() if life is not None else 0
    qualifying: LifeState | None = None
    if weak:
        run = logged.weak_run(ordinal, floor, policy.weak_events, policy.weak_window_days)
        if run is not None:
            qualifying = LifeState(dt.date.fromordinal(run[0]), run[1])
    elif ordinal > floor:
        qualifying = LifeState(day, (ref,))

    state = PersonState(
        state.person_ref,
        state.pension,
        death,
        state.residence,
        life if qualifying is None else qualifying,
        retained(
            logged,
            tracked=tracked,
            retention_days=policy.evidence_retention_days,
            window_days=policy.weak_window_days,
        ),
        state.withdrawn,
        state.epoch,
    )
    if qualifying is not None and tracked and death is None:
        state, more = qualify(state, qualifying.day, qualifying.refs, policy)
        decisions += more
    return state, decisions


def on_death(state: PersonState, policy: Policy) -> tuple[PersonState, list[Decision]]:
    """React to the first death record (already in ``state.death``)."""
    if not state.tracked:
        return state, []
    return deceased(state, policy)


def deceased(state: PersonState, policy: Policy) -> tuple[PersonState, list[Decision]]:
    """``suspended`` / ``deceased`` (once) and an alert for each held activity after it."""
    pension, death = state.pension, state.death
    assert pension is not None  # noqa: S101 - callers check it
    assert death is not None  # noqa: S101 - callers check it
    if pension.final:
        return state, []
    pension = replace(pension, final=True)
    state = state.with_pension(pension)
    decisions = [
        pension_status(
            state,
            pension,
            policy,
            decision="suspended",
            reason="deceased",
            as_of=death.date_of_death,
            refs=death.refs,
            identity=("suspended", "deceased"),
            date_of_death=death.date_of_death,
        )
    ]
    for ref in state.held.after(death.date_of_death.toordinal()):
        death, alert = alerts.raised(state, death, ref, policy)
        if alert is not None:
            decisions.append(alert)
    return state.with_death(death), decisions


def on_tick(
    state: PersonState, as_of: dt.date, policy: Policy
) -> tuple[PersonState, list[Decision]]:
    """Remind before ``qualified_until`` and suspend after it."""
    pension = _open(state)
    if pension is None:
        return state, []
    deadline = pension.qualified_until
    if as_of > deadline:
        pension = replace(pension, suspended_on=as_of)
        decision = pension_status(
            state,
            pension,
            policy,
            decision="suspended",
            reason="no_evidence",
            as_of=as_of,
            identity=("suspended", "no_evidence", deadline.isoformat()),
        )
    elif (deadline - as_of).days <= policy.reminder_days and pension.reminded_for != deadline:
        pension = replace(pension, reminded_for=deadline)
        decision = pension_status(
            state,
            pension,
            policy,
            decision="reminder",
            reason="no_evidence",
            as_of=as_of,
            identity=("reminder", deadline.isoformat()),
        )
    else:
        return state, []
    return state.with_pension(pension), [decision]


def next_due(state: PersonState, policy: Policy) -> dt.date | None:
    """The first tick day at which :func:`on_tick` may decide something, if any."""
    pension = _open(state)
    if pension is None:
        return None
    deadline = pension.qualified_until
    if pension.reminded_for == deadline:
        return deadline + dt.timedelta(days=1)
    return deadline - dt.timedelta(days=policy.reminder_days)


def _open(state: PersonState) -> PensionState | None:
    """The pension if ticks can decide about it: tracked, alive, not suspended."""
    pension = state.pension
    if (
        pension is None
        or not pension.active
        or pension.final
        or pension.suspended_on is not None
        or state.death is not None
    ):
        return None
    return pension


def qualify(
    state: PersonState, day: dt.date, refs: tuple[Ref, ...], policy: Policy
) -> tuple[PersonState, list[Decision]]:
    """Qualifying evidence dated ``day`` for a tracked, living pensioner."""
    pension = state.pension
    assert pension is not None  # noqa: S101 - only called for tracked persons
    qualified_until = add_months(day, policy.cycle_months)
    if pension.final or qualified_until <= pension.qualified_until:
        return state, []
    if pension.suspended_on is not None:
        if qualified_until < pension.suspended_on:
            pension = _requalified(pension, qualified_until, pension.last_confirmed, suspended=True)
            return state.with_pension(pension), []
        pension = _requalified(pension, qualified_until, day, suspended=False)
        decision = "resumed"
    elif (
        pension.last_confirmed is not None
        and (day - pension.last_confirmed).days <= policy.confirmation_quiet_days
    ):
        pension = _requalified(pension, qualified_until, pension.last_confirmed, suspended=False)
        return state.with_pension(pension), []
    else:
        pension = _requalified(pension, qualified_until, day, suspended=False)
        decision = "confirmed"
    state = state.with_pension(pension)
    status = pension_status(
        state,
        pension,
        policy,
        decision=decision,
        reason="evidence",
        as_of=day,
        refs=refs,
        identity=(decision, day.isoformat()),
    )
    return state, [status]


def _requalified(
    pension: PensionState,
    qualified_until: dt.date,
    last_confirmed: dt.date | None,
    *,
    suspended: bool,
) -> PensionState:
    """``pension`` with a raised ``qualified_until`` (built directly: the hot path)."""
    return PensionState(
        pension.record_at,
        pension.record_id,
        pension.account,
        pension.active,
        qualified_until,
        pension.suspended_on if suspended else None,
        pension.reminded_for,
        last_confirmed,
        pension.final,
        pension.previous,
    )


def pension_status(
    state: PersonState,
    pension: PensionState,
    policy: Policy,
    *,
    decision: str,
    reason: str,
    as_of: dt.date,
    identity: tuple[str, ...],
    refs: tuple[Ref, ...] = (),
    date_of_death: dt.date | None = None,
) -> Decision:
    """A ``derived.pension_status.v1`` decision about ``pension``; ``identity`` names what
    it decides (the person's epoch is added to it)."""
    record = PensionStatus.model_validate(
        {
            "person_ref": state.person_ref,
            "pensioner_account": pension.account,
            "decision": decision,
            "reason": reason,
            "as_of": as_of,
            "qualified_until": pension.qualified_until,
            "evidence": [evidence_ref(ref) for ref in refs],
            "date_of_death": date_of_death,
            "rule_version": policy.pension_rule_version,
        }
    )
    ident = decision_id(
        policy.pension_rule_version, state.person_ref, *identity, *epoch_tag(state.epoch)
    )
    return Decision(ident, PENSION_STATUS, record)
