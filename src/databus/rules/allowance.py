"""Old-age allowance (DOMAIN.md §2, ``allowance/1``).

A living resident of the province is granted the tier of their age at the first tick of
the month after the birthday that reaches it (``eff(T) = month(birth_date + T years) +
1 month``), moves up a tier the same way, and loses the allowance when they move out
(from the next month) or die (from the month after the death).

Cases DOMAIN.md leaves open, and what we decided:

- *Which household record is the latest* is decided by ``occurred_at`` (then ``ce_id``),
  not by arrival: an old ``moved_in`` delivered after a newer ``moved_out`` changes
  nothing, and a redelivered record is ignored.
- *``region_code`` of every record* is read as where the person is registered. Any
  ``moved_out`` ends residence (an intra-province move is published as ``updated`` or as
  a ``moved_in`` at the new place). A ``registered``, ``moved_in`` or ``updated`` outside
  the province also ends residence, and stops an allowance like ``moved_out`` does
  (reason ``moved_out``, from the next month): a non-resident is never paid.
- *Moving back in* is granted at the next tick, never effective before the month from
  which the last stop took effect: moving out and back within one month leaves no gap
  and no overlap when the decisions are applied in order.
- *A ``stopped`` decision* names the tier and monthly amount that stop.
- *A death dated before a move out already recorded* (the move out stopped the
  allowance from a month after the one following the death) still gives
  ``stopped`` / ``deceased`` from the month after the death, so that no month after it
  is left paid; a death after the stop took effect decides nothing.
- *A resident first seen above 80* (say at 95) is granted the highest tier reached,
  effective from the month of the tick; no arrears are decided here.
- *A corrected birth date that lowers the age* does not lower or stop an allowance by
  itself (there is no such decision in the table; it needs an officer).
- *Death* (the first death record, from any agency) ends everything: no grant and no
  tier change afterwards.
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
from databus.rules.decision import ELDERLY_ALLOWANCE, Decision, decision_id
from databus.rules.policy import TIER_AGES, Policy, Tier
from databus.rules.state import PersonState, ResidenceState

_RESIDENT_EVENTS: Final = frozenset({"registered", "moved_in", "updated"})
_RANK: Final[dict[str, int]] = {name: rank for rank, name in enumerate(TIER_AGES)}


def eligible_from(birth_date: dt.date, tier: Tier) -> int:
    """``eff(T)``: the month index from which ``tier`` applies to someone born then."""
    return month_index(add_months(birth_date, 12 * tier.min_age)) + 1


def on_household(
    state: PersonState, event_id: str, record: Household, policy: Policy
) -> tuple[PersonState, list[Decision]]:
    """Apply a household record: residence, birth date, and a stop on moving out."""
    at = instant(record.occurred_at)
    residence = state.residence
    if residence is not None and (at, event_id) <= (residence.record_at, residence.record_id):
        return state, []  # older than the record in force, or a redelivery
    resident = record.event in _RESIDENT_EVENTS and record.region_code.startswith(
        policy.province_prefix
    )
    tier = stopped_from = None
    if residence is not None:
        tier, stopped_from = residence.tier, residence.stopped_from
    decisions: list[Decision] = []
    if (
        tier is not None
        and stopped_from is None
        and not resident
        and record.event != "deregistered_death"
    ):
        effective = month_index(local_day(record.occurred_at, policy.zone)) + 1
        decisions.append(
            _decision(
                state,
                policy,
                "stopped",
                tier=policy.tier(tier),
                effective=effective,
                reason="moved_out",
                cause=event_id,
            )
        )
        stopped_from = month_text(effective)
    updated = ResidenceState(at, event_id, record.birth_date, resident, tier, stopped_from)
    return state.with_residence(updated), decisions


def on_death(state: PersonState, policy: Policy) -> tuple[PersonState, list[Decision]]:
    """Stop the allowance from the month after the death (the first death seen), also
    when a move out stopped it only from a later month."""
    residence, death = state.residence, state.death
    if residence is None or residence.tier is None or death is None:
        return state, []
    effective = month_index(death.date_of_death) + 1
    stopped_from = residence.stopped_from
    if stopped_from is not None and month_from_text(stopped_from) <= effective:
        return state, []
    decision = _decision(
        state,
        policy,
        "stopped",
        tier=policy.tier(residence.tier),
        effective=effective,
        reason="deceased",
    )
    return state.with_residence(replace(residence, stopped_from=month_text(effective))), [decision]


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
        if residence.stopped_from is not None:
            effective = max(effective, month_from_text(residence.stopped_from))
        decision = _decision(
            state,
            policy,
            "granted",
            tier=highest,
            effective=effective,
            reason="age",
            cause=residence.record_id,
        )
    elif _RANK[highest.name] > _RANK[residence.tier]:
        decision = _decision(
            state, policy, "tier_changed", tier=highest, effective=effective, reason="age"
        )
    else:
        return state, []
    return state.with_residence(replace(residence, tier=highest.name, stopped_from=None)), [
        decision
    ]


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


def _decision(
    state: PersonState,
    policy: Policy,
    decision: str,
    *,
    tier: Tier,
    effective: int,
    reason: str,
    cause: str = "",
) -> Decision:
    """An allowance decision; ``cause`` (a household record id) tells apart decisions of
    the same kind and month, such as two moves out and back within one month."""
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
    identity = (decision, reason, tier.name, month, cause)
    return Decision(
        decision_id(policy.allowance_rule_version, state.person_ref, *identity),
        ELDERLY_ALLOWANCE,
        record,
    )
