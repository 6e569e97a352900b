"""The byte form of a person's state, and reading the older form.

An orjson array of plain values: ``[FORMAT, person_ref, pension, death, residence,
life, held]``, then ``withdrawn`` and ``epoch`` only when there are any (most persons
never have a record withdrawn, and their state stays as small as before); the held
log's horizon likewise only once it has forgotten something. Dates are
ordinals, evidence columns. Written by every worker after every change, so it is built
by hand, without pydantic.

Format 1 (before retractions) is still read: its death knew only the first record's date
and no alerts, its residence no region, stop or tier history. What is missing is filled
in as the old rules would have had it (see :func:`_death_v1` and :func:`_residence_v1`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import orjson

from databus.errors import StateFormatError
from databus.rules.dates import add_months, month_from_text, month_index, month_text
from databus.rules.evidence import HeldEvidence, Ref
from databus.rules.policy import TIER_AGES
from databus.rules.state import (
    MAX_ALERTS,
    DeathState,
    LifeState,
    PensionState,
    PersonState,
    PreviousHousehold,
    PreviousPensioner,
    ResidenceState,
    Step,
)

FORMAT: Final = 2
"""Version of the byte form; bump it (and read the old one) when the layout changes."""


def encode(state: PersonState) -> bytes:
    """The byte form of ``state``."""
    held = state.held
    parts: list[Any] = [
        FORMAT,
        state.person_ref,
        _pension_out(state.pension),
        _death_out(state.death),
        _residence_out(state.residence),
        None if state.life is None else [state.life.day.toordinal(), state.life.refs],
        [held.days, held.kinds, held.ids, held.times, held.horizon]
        if held.horizon
        else [held.days, held.kinds, held.ids, held.times],
    ]
    if state.withdrawn or state.epoch:
        parts += [state.withdrawn, state.epoch]
    return orjson.dumps(parts)


def decode(data: bytes) -> PersonState:
    """The state written by :func:`encode`, in this format or format 1."""
    try:
        parts = orjson.loads(data)
        version = parts[0]
        if version == FORMAT:
            return _v2(parts)
        if version == 1:
            return _v1(parts)
        raise StateFormatError(f"unknown person state format {version!r}")
    except StateFormatError:
        raise
    except (orjson.JSONDecodeError, TypeError, ValueError, IndexError, KeyError) as exc:
        raise StateFormatError(f"cannot read person state: {exc}") from exc


def _v2(parts: list[Any]) -> PersonState:
    person_ref, pension, death, residence, life, held = parts[1:7]
    withdrawn, epoch = parts[7:9] if len(parts) > 7 else ((), 0)  # noqa: PLR2004 - the tail
    return PersonState(
        person_ref,
        _pension_in(pension),
        _death_in(death),
        _residence_in(residence),
        _life_in(life),
        _held_in(held),
        tuple((row[0], row[1]) for row in withdrawn),
        epoch,
    )


def _v1(parts: list[Any]) -> PersonState:
    _, person_ref, pension_row, death_row, residence_row, life, held_row = parts
    pension, held = _pension_in(pension_row), _held_v1(held_row)
    death = _death_v1(death_row, held, tracked=pension is not None and pension.active)
    return PersonState(
        person_ref, pension, death, _residence_v1(residence_row, death), _life_in(life), held
    )


def _day(ordinal: int) -> dt.date:
    return dt.date.fromordinal(ordinal)


def _ordinal(day: dt.date | None) -> int | None:
    return None if day is None else day.toordinal()


def _maybe_day(ordinal: int | None) -> dt.date | None:
    return None if ordinal is None else dt.date.fromordinal(ordinal)


def _refs(rows: list[list[Any]]) -> tuple[Ref, ...]:
    return tuple((row[0], row[1], row[2]) for row in rows)


def _held_in(row: list[Any]) -> HeldEvidence:
    horizon = row[4] if len(row) > 4 else 0  # noqa: PLR2004 - written only when set
    return HeldEvidence(tuple(row[0]), tuple(row[1]), tuple(row[2]), tuple(row[3]), horizon)


def _held_v1(row: list[list[Any]]) -> HeldEvidence:
    """A format-1 log did not say what it had forgotten: it is taken as complete only
    from its oldest event on (no redelivery can then raise a new alert)."""
    days = tuple(row[0])
    return HeldEvidence(days, tuple(row[1]), tuple(row[2]), tuple(row[3]), days[0] if days else 0)


def _life_in(row: list[Any] | None) -> LifeState | None:
    return None if row is None else LifeState(_day(row[0]), _refs(row[1]))


def _pension_out(pension: PensionState | None) -> list[Any] | None:
    if pension is None:
        return None
    row = [
        pension.record_at,
        pension.record_id,
        pension.account,
        pension.active,
        pension.qualified_until.toordinal(),
        _ordinal(pension.suspended_on),
        _ordinal(pension.reminded_for),
        _ordinal(pension.last_confirmed),
        pension.final,
    ]
    previous = pension.previous
    if previous is not None:
        row.append([previous.record_at, previous.record_id, previous.account, previous.active])
    return row


def _pension_in(row: list[Any] | None) -> PensionState | None:
    if row is None:
        return None
    previous = None
    if len(row) > 9:  # noqa: PLR2004 - the optional previous record
        at, record_id, account, active = row[9]
        previous = PreviousPensioner(at, record_id, account, active)
    return PensionState(
        row[0],
        row[1],
        row[2],
        row[3],
        _day(row[4]),
        _maybe_day(row[5]),
        _maybe_day(row[6]),
        _maybe_day(row[7]),
        row[8],
        previous,
    )


def _death_out(death: DeathState | None) -> list[Any] | None:
    if death is None:
        return None
    return [
        death.date_of_death.toordinal(),
        death.refs,
        [day.toordinal() for day in death.dates],
        death.alerted,
    ]


def _death_in(row: list[Any] | None) -> DeathState | None:
    if row is None:
        return None
    dates = tuple(_day(ordinal) for ordinal in row[2])
    return DeathState(_day(row[0]), _refs(row[1]), dates, _refs(row[3]))


def _death_v1(row: list[Any] | None, held: HeldEvidence, *, tracked: bool) -> DeathState | None:
    """A format-1 death: every record is given the first one's date (the only one kept),
    and the alerts in force are those the old rules raised: one per held activity dated
    after the death, for a tracked pensioner."""
    if row is None:
        return None
    date_of_death, refs = _day(row[0]), _refs(row[1])
    alerted = tuple(held.after(row[0]))[:MAX_ALERTS] if tracked else ()
    return DeathState(date_of_death, refs, (date_of_death,) * len(refs), alerted)


def _residence_out(residence: ResidenceState | None) -> list[Any] | None:
    if residence is None:
        return None
    previous = residence.previous
    return [
        residence.record_at,
        residence.record_id,
        residence.birth_date.toordinal(),
        residence.resident,
        residence.tier,
        residence.stopped_from,
        residence.in_province,
        residence.stop,
        residence.moved_out_from,
        residence.moved_out_by,
        residence.steps,
        residence.granted_by,
        None
        if previous is None
        else [
            previous.record_at,
            previous.record_id,
            previous.birth_date.toordinal(),
            previous.resident,
            previous.in_province,
        ],
    ]


def _residence_in(row: list[Any] | None) -> ResidenceState | None:
    if row is None:
        return None
    previous = None
    if row[12] is not None:
        at, record_id, born, resident, in_province = row[12]
        previous = PreviousHousehold(at, record_id, _day(born), resident, in_province)
    return ResidenceState(
        row[0],
        row[1],
        _day(row[2]),
        row[3],
        row[6],
        row[4],
        row[5],
        row[7],
        row[8],
        row[9],
        tuple((step[0], step[1], step[2], step[3]) for step in row[10]),
        row[11],
        previous,
    )


def _residence_v1(row: list[Any] | None, death: DeathState | None) -> ResidenceState | None:
    """A format-1 residence. Its region was not kept: a record that made the person a
    resident was in the province, any other is taken as outside it. A stop from the
    month after the death is the death's; any other stop is a move out, by the record
    in force when that record is not resident. The tier's grant was not kept either: it
    is taken as effective from the month the tier became due, made by an unknown tick
    (0), so that neither a reset nor a withdrawn household record ever undoes it."""
    if row is None:
        return None
    at, record_id, born, resident, tier, stopped_from = row
    birth_date = _day(born)
    stop, moved_out_from, moved_out_by = "", None, ""
    if stopped_from is not None:
        if death is not None and month_from_text(stopped_from) == (
            month_index(death.date_of_death) + 1
        ):
            stop = "deceased"
        else:
            stop, moved_out_from = "moved_out", stopped_from
            moved_out_by = "" if resident else record_id
    steps: tuple[Step, ...] = ()
    if tier is not None:
        due = month_index(add_months(birth_date, 12 * TIER_AGES[tier])) + 1
        steps = ((tier, month_text(due), 0, True),)
    return ResidenceState(
        at,
        record_id,
        birth_date,
        resident,
        resident,
        tier,
        stopped_from,
        stop,
        moved_out_from,
        moved_out_by,
        steps,
    )  # granted_by unknown: no withdrawn household record ever stops it
