"""A person's state as an officer reads it (``databus explain``): JSON-ready, dates in
ISO form, datasets by name. Not the stored form (:mod:`databus.rules.codec`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from databus.rules.evidence import DATASETS, evidence_ref
from databus.rules.state import DeathState, PensionState, PersonState, ResidenceState


def state_view(state: PersonState) -> dict[str, Any]:
    """Everything the rules keep about the person, readably."""
    life, held = state.life, state.held
    return {
        "person_ref": state.person_ref,
        "pension": _pension(state.pension),
        "death": _death(state.death),
        "residence": _residence(state.residence),
        "latest_qualifying_evidence": None
        if life is None
        else {"day": life.day.isoformat(), "evidence": [evidence_ref(r) for r in life.refs]},
        "held_evidence": [
            {
                **evidence_ref(held.ref(index)),
                "day": dt.date.fromordinal(day).isoformat(),
                "weak": bool(held.kinds[index] & 1),
            }
            for index, day in enumerate(held.days)
        ],
        "withdrawn": [{"id": ident, "dataset": DATASETS[code]} for code, ident in state.withdrawn],
        "epoch": state.epoch,
    }


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def _pension(pension: PensionState | None) -> dict[str, Any] | None:
    if pension is None:
        return None
    previous = pension.previous
    return {
        "pensioner_account": pension.account,
        "tracked": pension.active,
        "qualified_until": pension.qualified_until.isoformat(),
        "suspended_on": _iso(pension.suspended_on),
        "reminded_for": _iso(pension.reminded_for),
        "last_confirmed": _iso(pension.last_confirmed),
        "final": pension.final,
        "record_id": pension.record_id,
        "previous_record_id": None if previous is None else previous.record_id,
    }


def _death(death: DeathState | None) -> dict[str, Any] | None:
    if death is None:
        return None
    return {
        "date_of_death": death.date_of_death.isoformat(),
        "evidence": [evidence_ref(ref) for ref in death.refs],
        "dates_of_death": [day.isoformat() for day in death.dates],
        "alerts": [evidence_ref(ref) for ref in death.alerted],
    }


def _residence(residence: ResidenceState | None) -> dict[str, Any] | None:
    if residence is None:
        return None
    previous = residence.previous
    return {
        "birth_date": residence.birth_date.isoformat(),
        "resident": residence.resident,
        "in_province": residence.in_province,
        "allowance_tier": residence.tier,
        "allowance_stopped_from": residence.stopped_from,
        "allowance_stop_reason": residence.stop or None,
        "moved_out_from": residence.moved_out_from,
        "allowance_steps": [
            {
                "decision": "granted" if granted else "tier_changed",
                "tier": tier,
                "effective_month": month,
                "tick": None if tick == 0 else dt.date.fromordinal(tick).isoformat(),
            }
            for tier, month, tick, granted in residence.steps
        ],
        "record_id": residence.record_id,
        "previous_record_id": None if previous is None else previous.record_id,
    }
