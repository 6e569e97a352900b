"""What a withdrawn household record and a clock reset do to the old-age allowance
(docs/rules.md, "Retractions" and "Clock resets").

Every decision here has reason ``retracted``, and a consumer that applies the allowance
decisions in order, each from its effective month, then pays what it would have paid
had the withdrawn record or tick never come. Cases, and what we decided:

- *The household record in force withdrawn* restores the one in force before it (one is
  kept). If none was kept, the person has no household record, as if it had never been
  received.
- *A record that made the person a resident, withdrawn*, when the record it restores
  does not: the allowance granted while it was in force is ``stopped`` / ``retracted``
  from the month it was first granted (an allowance granted before it had another cause
  and stays). Withdrawn with its cause, it is not reinstated by a later retraction of a
  death; the next tick after a real registration grants it as usual.
- *A record that ended residence, withdrawn* (a move out, or a registration outside the
  province), when the record it restores is a residence: the stop it caused is lifted,
  ``granted`` / ``retracted`` from the month the stop took effect, same tier, if no other
  stop applies (a death).
- *A household ``deregistered_death`` withdrawn*: its death part leaves the death's
  evidence (:mod:`databus.rules.retraction`); when it is the record in force it is read
  as if it had been an ``updated`` at its region, so a region in the province restores
  the residence it ended and one outside the province ends it like a move out.
- *An older record withdrawn* (neither in force nor the one kept before it) changes
  nothing; the one kept before the record in force, withdrawn, is forgotten.
- *A birth date* comes back with the restored record; as for a corrected birth date, a
  lower age does not lower or stop an allowance by itself.
- *A reset to day D* withdraws the allowance decisions of every tick after D: the grant
  and tier changes of the current allowance made by those ticks are undone, from the
  month the first of them took effect, to the tier in force before them
  (``tier_changed`` / ``retracted``) or to none (``stopped`` / ``retracted``). The next
  tick decides again as usual, so a person eligible at D is granted again from the
  month of that tick (as for any late tick, no arrears). An allowance stopped since (a
  death, a move out) decides nothing: the stop already took effect, and only the tier
  it would restore is set back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from databus.rules import allowance
from databus.rules.dates import local_day, moment_of, month_from_text
from databus.rules.decision import Decision, Withdrawal
from databus.rules.evidence import Ref
from databus.rules.policy import Policy
from databus.rules.state import PersonState, ResidenceState


def household_withdrawn(
    state: PersonState, withdrawal: Withdrawal, policy: Policy, *, deregistration: bool
) -> tuple[PersonState, list[Decision], Ref | None]:
    """The residence part of a withdrawn household record; returns the new state, the
    decisions, and the withdrawn record's reference (None if it was not found)."""
    residence = state.residence
    record_id = withdrawal.record_id
    if residence is None:
        return state, [], None
    previous = residence.previous
    if previous is not None and previous.record_id == record_id:
        ref = (record_id, withdrawal.code, moment_of(previous.record_at).isoformat())
        return state.with_residence(replace(residence, previous=None)), [], ref
    if residence.record_id != record_id:
        return state, [], None
    ref = (record_id, withdrawal.code, moment_of(residence.record_at).isoformat())
    if deregistration:
        state, decisions = _deregistration_withdrawn(state, residence, withdrawal, policy)
    else:
        state, decisions = _record_withdrawn(state, residence, withdrawal, policy)
    return state, decisions, ref


def _deregistration_withdrawn(
    state: PersonState, residence: ResidenceState, withdrawal: Withdrawal, policy: Policy
) -> tuple[PersonState, list[Decision]]:
    """The deregistration in force, withdrawn, reads as an ``updated`` at its region."""
    updated = replace(residence, resident=residence.in_province)
    if not residence.in_province:
        day = local_day(moment_of(residence.record_at), policy.zone)
        updated = allowance.left_province(updated, withdrawal.record_id, day)
    return allowance.reconcile(state.with_residence(updated), policy, identity=withdrawal.identity)


def _record_withdrawn(
    state: PersonState, residence: ResidenceState, withdrawal: Withdrawal, policy: Policy
) -> tuple[PersonState, list[Decision]]:
    """The record in force, withdrawn: the one before it is restored (or none)."""
    previous = residence.previous
    restored: ResidenceState | None = None
    if previous is not None:
        restored = replace(
            residence,
            record_at=previous.record_at,
            record_id=previous.record_id,
            birth_date=previous.birth_date,
            resident=previous.resident,
            in_province=previous.in_province,
            previous=None,
        )
    if residence.resident and (restored is None or not restored.resident):
        state, decisions = _withdraw_grant(state, residence, withdrawal, policy)
        stopped = state.residence
        assert stopped is not None  # noqa: S101 - _withdraw_grant keeps it
        if restored is not None and stopped is not residence:  # the grant was withdrawn
            restored = replace(
                restored,
                stopped_from=stopped.stopped_from,
                stop=stopped.stop,
                moved_out_from=None,
                moved_out_by="",
            )
        return state.with_residence(restored), decisions
    if restored is None:
        return state.with_residence(None), []
    if (
        not residence.resident
        and restored.resident
        and residence.moved_out_by == withdrawal.record_id
    ):
        restored = replace(restored, moved_out_from=None, moved_out_by="")
    return allowance.reconcile(state.with_residence(restored), policy, identity=withdrawal.identity)


def _withdraw_grant(
    state: PersonState, residence: ResidenceState, withdrawal: Withdrawal, policy: Policy
) -> tuple[PersonState, list[Decision]]:
    """Stop, from the month it was granted, the allowance granted while the withdrawn
    record was in force (one granted before it had another cause, and stays)."""
    grants = [step for step in residence.steps if step[3]]
    if residence.tier is None or not grants or residence.granted_by != residence.record_id:
        return state, []
    granted = grants[-1][1]
    stopped = residence.stopped_from
    decisions: list[Decision] = []
    if stopped is None or month_from_text(stopped) > month_from_text(granted):
        decisions.append(
            allowance.allowance_decision(
                state,
                policy,
                "stopped",
                tier=policy.tier(residence.tier),
                effective=month_from_text(granted),
                reason="retracted",
                identity=withdrawal.identity,
            )
        )
        stopped = granted
    updated = replace(
        residence, stopped_from=stopped, stop="retracted", moved_out_from=None, moved_out_by=""
    )
    return state.with_residence(updated), decisions


def affected_by_reset(state: PersonState, as_of: dt.date) -> bool:
    """Whether a tick after ``as_of`` granted or raised the allowance in force."""
    residence = state.residence
    if residence is None or not residence.steps:
        return False
    return residence.steps[-1][2] > as_of.toordinal()


def on_reset(
    state: PersonState, as_of: dt.date, policy: Policy
) -> tuple[PersonState, list[Decision]]:
    """Undo what ticks after ``as_of`` decided about the allowance."""
    residence = state.residence
    if residence is None or residence.tier is None or not affected_by_reset(state, as_of):
        return state, []
    ordinal = as_of.toordinal()
    kept = tuple(step for step in residence.steps if step[2] <= ordinal)
    first = residence.steps[len(kept)]
    effective = month_from_text(first[1])
    # Back to none when the first withdrawn decision was a grant: an allowance granted
    # anew, or one granted again after a stop, from the month the stop took effect.
    tier = None if first[3] else kept[-1][0]
    decisions: list[Decision] = []
    if residence.stopped_from is None:
        decision, kind = ("stopped", residence.tier) if tier is None else ("tier_changed", tier)
        decisions.append(
            allowance.allowance_decision(
                state,
                policy,
                decision,
                tier=policy.tier(kind),
                effective=effective,
                reason="retracted",
                identity=("reset", as_of.isoformat()),
            )
        )
    if not kept:
        updated = replace(
            residence,
            tier=None,
            stopped_from=None,
            stop="",
            moved_out_from=None,
            moved_out_by="",
            steps=(),
            granted_by="",
        )
    elif tier is None:  # stopped again from the month the withdrawn grant took effect
        updated = replace(
            residence,
            tier=kept[-1][0],
            steps=kept,
            stopped_from=residence.stopped_from or first[1],
            stop=residence.stop or "moved_out",
            moved_out_from=residence.moved_out_from or first[1],
        )
    else:
        updated = replace(residence, tier=tier, steps=kept)
    return state.with_residence(updated), decisions
