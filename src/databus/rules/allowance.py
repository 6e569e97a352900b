"""Old-age allowance (``allowance/1``; docs/rules.md, "Old-age allowance").

A living resident of the province is granted the tier of their age at the first tick of
the month after the birthday that reaches it (``eff(T) = month(birth_date + T years) +
1 month``), moves up a tier the same way, and loses the allowance when they move out
(from the next month) or die (from the month after the death).

Cases the rules' source leaves open, and what we decided:

- *Which household record is the latest* is decided by ``occurred_at`` (then ``ce_id``),
  not by arrival: an old ``moved_in`` delivered after a newer ``moved_out`` changes
  nothing (it is only kept as the one before it, should that be withdrawn), and a
  redelivered record is ignored.
- *``region_code`` of every record* is read as where the person is registered. Any
  ``moved_out`` ends residence (an intra-province move is published as ``updated`` or as
  a ``moved_in`` at the new place). A ``registered``, ``moved_in`` or ``updated`` outside
  the province also ends residence, and stops an allowance like ``moved_out`` does
  (reason ``moved_out``, from the next month): a non-resident is never paid.
- *Moving back in* is granted at the next tick, never effective before the month from
  which the last stop took effect: moving out and back within one month leaves no gap
  and no overlap when the decisions are applied in order.
- *A ``stopped`` decision* names the tier and monthly amount that stop.
- *The stop in force is the earliest that applies*: from the month after the death, or
  from the month after the person left the province (the first record that ended their
  residence while the allowance was theirs), whichever comes first. So a death dated
  before a move out already recorded still gives ``stopped`` / ``deceased`` from the
  month after the death, a move out dated before a death already recorded gives
  ``stopped`` / ``moved_out`` from the month after it, and a stop later than the one in
  force decides nothing.
- *A resident first seen above 80* (say at 95) is granted the highest tier reached,
  effective from the month of the tick; no arrears are decided here.
- *A corrected birth date that lowers the age* does not lower or stop an allowance by
  itself (there is no such decision in the table; it needs an officer).
- *Death* (the first death record, from any agency) ends everything: no grant and no
  tier change afterwards, while a death record stands.

What retractions and clock resets do to an allowance: :mod:`databus.rules.allowance_undo`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Final

from databus.records import ElderlyAllowance, Household
from databus.rules.dates import (
    add_months,
    first_day,
    instant,
    local_day,
    month_from_text,
    month_index,
    month_text,
)
from databus.rules.decision import ELDERLY_ALLOWANCE, Decision, decision_id, epoch_tag
from databus.rules.policy import TIER_AGES, Policy, Tier
from databus.rules.state import PersonState, PreviousHousehold, ResidenceState, Step

_RESIDENT_EVENTS: Final = frozenset({"registered", "moved_in", "updated"})
_RANK: Final[dict[str, int]] = {name: rank for rank, name in enumerate(TIER_AGES)}


def eligible_from(birth_date: dt.date, tier: Tier) -> int:
    """``eff(T)``: the month index from which ``tier`` applies to someone born then."""
    return month_index(add_months(birth_date, 12 * tier.min_age)) + 1


def rank(tier: str) -> int:
    """The position of a tier, youngest first."""
    return _RANK[tier]


def on_household(
    state: PersonState, event_id: str, record: Household, policy: Policy
) -> tuple[PersonState, list[Decision]]:
    """Apply a household record: residence, birth date, and a stop on moving out."""
    at = instant(record.occurred_at)
    residence = state.residence
    in_province = record.region_code.startswith(policy.province_prefix)
    resident = record.event in _RESIDENT_EVENTS and in_province
    if residence is not None and (at, event_id) <= (residence.record_at, residence.record_id):
        return _older(state, residence, at, event_id, record, in_province=in_province)
    if residence is None:
        first = ResidenceState(at, event_id, record.birth_date, resident, in_province)
        return state.with_residence(first), []
    previous = None
    if residence.record_id:
        previous = PreviousHousehold(
            residence.record_at,
            residence.record_id,
            residence.birth_date,
            residence.resident,
            residence.in_province,
        )
    updated = replace(
        residence,
        record_at=at,
        record_id=event_id,
        birth_date=record.birth_date,
        resident=resident,
        in_province=in_province,
        previous=previous,
    )
    if not resident and record.event != "deregistered_death":
        updated = left_province(updated, event_id, local_day(record.occurred_at, policy.zone))
    return reconcile(state.with_residence(updated), policy)


def _older(
    state: PersonState,
    residence: ResidenceState,
    at: int,
    event_id: str,
    record: Household,
    *,
    in_province: bool,
) -> tuple[PersonState, list[Decision]]:
    """A record older than the one in force (or a redelivery) decides nothing, but is
    the one to restore if the record in force is withdrawn."""
    previous = residence.previous
    if (at, event_id) == (residence.record_at, residence.record_id) or (
        previous is not None and (at, event_id) <= (previous.record_at, previous.record_id)
    ):
        return state, []
    resident = record.event in _RESIDENT_EVENTS and in_province
    older = PreviousHousehold(at, event_id, record.birth_date, resident, in_province)
    return state.with_residence(replace(residence, previous=older)), []


def left_province(residence: ResidenceState, event_id: str, day: dt.date) -> ResidenceState:
    """Remember that the person left the province on ``day`` (record ``event_id``), if
    that ends an allowance of theirs: in force, or stopped only by a death."""
    if residence.tier is None or residence.moved_out_from is not None:
        return residence
    if residence.stop not in ("", "deceased"):
        return residence
    return replace(
        residence, moved_out_from=month_text(month_index(day) + 1), moved_out_by=event_id
    )


def on_death(state: PersonState, policy: Policy) -> tuple[PersonState, list[Decision]]:
    """Stop the allowance from the month after the death (the first death seen), also
    when a move out stopped it only from a later month."""
    return reconcile(state, policy)


def reconcile(
    state: PersonState, policy: Policy, *, identity: tuple[str, ...] = ()
) -> tuple[PersonState, list[Decision]]:
    """Make the stop in force the one that applies now (the earliest of the death's and
    the move out's), deciding what tells consumers so.

    Between two stops, or when none applies any more (its record was withdrawn), the
    allowance is ``granted`` / ``retracted`` again from the month the old stop took
    effect (not before the allowance was first granted), same tier: no gap, and no
    double payment. ``identity`` (a withdrawn record) is added to the identity of what
    it decides.
    """
    residence = state.residence
    if residence is None or residence.tier is None:
        return state, []
    wanted = _wanted_stop(state, residence)
    tier = policy.tier(residence.tier)
    stopped = None if residence.stopped_from is None else month_from_text(residence.stopped_from)
    decisions: list[Decision] = []
    if residence.stop == "retracted":  # withdrawn with the record that granted it
        if wanted is None or stopped is None or wanted[0] >= stopped:
            return state, []
    elif wanted is None:
        if stopped is None or not residence.resident:
            return state, []
        decisions += _granted_again(
            state, residence, stopped, policy, until=None, identity=identity
        )
        cleared = replace(residence, stopped_from=None, stop="")
        return state.with_residence(cleared), decisions
    elif stopped is not None and wanted[0] <= max(stopped, _granted_from(residence)):
        if wanted[0] >= stopped:  # nothing was paid from the old stop to the new one
            updated = replace(residence, stopped_from=month_text(wanted[0]), stop=wanted[1])
            return state.with_residence(updated), []
    elif stopped is not None:
        decisions += _granted_again(
            state, residence, stopped, policy, until=wanted[0], identity=identity
        )
    month, reason, cause = wanted
    decisions.append(
        allowance_decision(
            state,
            policy,
            "stopped",
            tier=tier,
            effective=month,
            reason=reason,
            cause=cause,
            identity=identity,
        )
    )
    updated = replace(residence, stopped_from=month_text(month), stop=reason)
    return state.with_residence(updated), decisions


def _granted_from(residence: ResidenceState) -> int:
    """The month the current allowance was first granted from (0 if not known)."""
    return month_from_text(residence.steps[0][1]) if residence.steps else 0


def _granted_again(
    state: PersonState,
    residence: ResidenceState,
    stopped: int,
    policy: Policy,
    *,
    until: int | None,
    identity: tuple[str, ...],
) -> list[Decision]:
    """``granted`` / ``retracted`` from the old stop (not before the allowance was paid
    without a break), at the tier in force then, and each later tier change again until
    ``until``."""
    assert residence.tier is not None  # noqa: S101 - only for an allowance once granted
    start = max(stopped, _granted_from(residence))
    steps = [(month_from_text(step[1]), step[0]) for step in residence.steps]
    tier = next((name for month, name in reversed(steps) if month <= start), residence.tier)
    decisions = [
        allowance_decision(
            state,
            policy,
            "granted",
            tier=policy.tier(tier),
            effective=start,
            reason="retracted",
            identity=identity,
        )
    ]
    for month, name in steps:
        if month > start and name != tier and (until is None or month < until):
            tier = name
            decisions.append(
                allowance_decision(
                    state,
                    policy,
                    "tier_changed",
                    tier=policy.tier(name),
                    effective=month,
                    reason="retracted",
                    identity=identity,
                )
            )
    return decisions


def _wanted_stop(state: PersonState, residence: ResidenceState) -> tuple[int, str, str] | None:
    """The stop that applies now: (month index, reason, cause), or None."""
    wanted = None
    if state.death is not None:
        wanted = (month_index(state.death.date_of_death) + 1, "deceased", "")
    if residence.moved_out_from is not None:
        moved = (month_from_text(residence.moved_out_from), "moved_out", residence.moved_out_by)
        if wanted is None or moved[0] < wanted[0]:
            wanted = moved
    return wanted


def on_tick(
    state: PersonState, as_of: dt.date, policy: Policy
) -> tuple[PersonState, list[Decision]]:
    """Grant, or move up a tier, once a tier has become effective."""
    residence = _open(state)
    if residence is None:
        return state, []
    month = month_index(as_of)
    highest: Tier | None = None
    for tier in policy.tiers:
        if eligible_from(residence.birth_date, tier) <= month:
            highest = tier
    if highest is None:
        return state, []
    effective = max(eligible_from(residence.birth_date, highest), month)
    if residence.tier is None or residence.stopped_from is not None:
        step = (highest.name, month_text(effective), as_of.toordinal(), True)
        steps: tuple[Step, ...] = (step,)
        if residence.stopped_from is not None:
            stopped = month_from_text(residence.stopped_from)
            effective = max(effective, stopped)
            step = (highest.name, month_text(effective), as_of.toordinal(), True)
            # From the month the stop took effect: the allowance goes on without a break.
            seamless = effective == stopped and residence.stop != "retracted"
            steps = (*residence.steps, step) if seamless else (step,)
        decision = allowance_decision(
            state,
            policy,
            "granted",
            tier=highest,
            effective=effective,
            reason="age",
            cause=residence.record_id,
        )
        updated = replace(
            residence,
            tier=highest.name,
            stopped_from=None,
            stop="",
            moved_out_from=None,
            moved_out_by="",
            steps=steps,
            granted_by=residence.record_id,
        )
    elif _RANK[highest.name] > _RANK[residence.tier]:
        decision = allowance_decision(
            state, policy, "tier_changed", tier=highest, effective=effective, reason="age"
        )
        raised = (highest.name, month_text(effective), as_of.toordinal(), False)
        updated = replace(residence, tier=highest.name, steps=(*residence.steps, raised))
    else:
        return state, []
    return state.with_residence(updated), [decision]


def next_due(state: PersonState, policy: Policy) -> dt.date | None:
    """The first day of the month the next tier above the one in force becomes effective."""
    residence = _open(state)
    if residence is None:
        return None
    in_force = residence.tier is not None and residence.stopped_from is None
    above = _RANK[residence.tier] if in_force and residence.tier is not None else -1
    for tier in policy.tiers:
        if _RANK[tier.name] > above:
            return first_day(eligible_from(residence.birth_date, tier))
    return None


def _open(state: PersonState) -> ResidenceState | None:
    """The residence if ticks can decide about it: a living resident."""
    residence = state.residence
    if residence is None or not residence.resident or state.death is not None:
        return None
    return residence


def allowance_decision(
    state: PersonState,
    policy: Policy,
    decision: str,
    *,
    tier: Tier,
    effective: int,
    reason: str,
    cause: str = "",
    identity: tuple[str, ...] = (),
) -> Decision:
    """An allowance decision; ``cause`` (a household record id) tells apart decisions of
    the same kind and month, such as two moves out and back within one month, and
    ``identity`` those caused by a retraction or a reset."""
    month = month_text(effective)
    record = ElderlyAllowance.model_validate(
        {
            "person_ref": state.person_ref,
            "decision": decision,
            "tier": tier.name,
            "monthly_amount_cents": tier.monthly_amount_cents,
            "effective_month": month,
            "reason": reason,
            "rule_version": policy.allowance_rule_version,
        }
    )
    parts = (decision, reason, tier.name, month, cause, *identity, *epoch_tag(state.epoch))
    return Decision(
        decision_id(policy.allowance_rule_version, state.person_ref, *parts),
        ELDERLY_ALLOWANCE,
        record,
    )
