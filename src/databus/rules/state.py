"""Everything the rules keep about one person, and its compact byte form.

All person-keyed topics are co-partitioned by ``person_ref``, so one state per person
carries the pension, the death, the residence (allowance) and the recent evidence. The
state is immutable: the rules return a new one. Its bytes are an orjson array of plain
values (dates as ordinals, evidence as columns), written and read without pydantic.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

import orjson

from databus.errors import DatabusError
from databus.rules.evidence import EMPTY, HeldEvidence, Ref, evidence_ref

FORMAT: Final = 1
"""Version of the byte form; bump it (and read the old one) when the layout changes."""


class StateFormatError(DatabusError):
    """Stored person state cannot be read (corrupt, or written by an unknown version)."""


@dataclass(frozen=True, slots=True)
class PensionState:
    """A pension as the latest pensioner record and the decisions so far leave it."""

    record_at: int
    """Instant (µs since the epoch) of the latest pensioner record applied."""
    record_id: str
    """``ce_id`` of that record (breaks ties between records of the same instant)."""
    account: str
    active: bool
    """Whether the latest record has ``status = active`` (the person is tracked)."""
    qualified_until: dt.date
    suspended_on: dt.date | None = None
    """The tick day of a ``suspended`` / ``no_evidence`` still in force."""
    reminded_for: dt.date | None = None
    """The ``qualified_until`` for which a reminder was emitted."""
    last_confirmed: dt.date | None = None
    """``as_of`` of the latest ``confirmed`` or ``resumed``."""
    final: bool = False
    """``suspended`` / ``deceased`` was emitted: nothing more is decided for it."""


@dataclass(frozen=True, slots=True)
class DeathState:
    """The registered death: the first date seen and every death record's reference."""

    date_of_death: dt.date
    refs: tuple[Ref, ...]
    """Death evidence, first the record that fixed ``date_of_death``."""


@dataclass(frozen=True, slots=True)
class ResidenceState:
    """Household registration and old-age allowance."""

    record_at: int
    """Instant (µs since the epoch) of the latest household record applied."""
    record_id: str
    birth_date: dt.date
    resident: bool
    """Whether the latest record registers the person in the province."""
    tier: str | None = None
    """The allowance tier last granted, None if none ever was."""
    stopped_from: str | None = None
    """``YYYY-MM`` from which that allowance is stopped; None while it is in force."""


@dataclass(frozen=True, slots=True)
class LifeState:
    """The latest qualifying evidence of life seen (strong event or weak run)."""

    day: dt.date
    refs: tuple[Ref, ...]


@dataclass(frozen=True, slots=True)
class PersonState:
    """Everything the rules keep about one person."""

    person_ref: str
    pension: PensionState | None = None
    death: DeathState | None = None
    residence: ResidenceState | None = None
    life: LifeState | None = None
    held: HeldEvidence = EMPTY

    @classmethod
    def empty(cls, person_ref: str) -> PersonState:
        """The state of a person the rules know nothing about yet."""
        return cls(person_ref)

    # Positional copies: the hot path avoids dataclasses.replace, which costs microseconds.
    def with_pension(self, pension: PensionState | None) -> PersonState:
        """This state with another pension."""
        return PersonState(
            self.person_ref, pension, self.death, self.residence, self.life, self.held
        )

    def with_death(self, death: DeathState | None) -> PersonState:
        """This state with another death."""
        return PersonState(
            self.person_ref, self.pension, death, self.residence, self.life, self.held
        )

    def with_residence(self, residence: ResidenceState | None) -> PersonState:
        """This state with another residence."""
        return PersonState(
            self.person_ref, self.pension, self.death, residence, self.life, self.held
        )

    @property
    def tracked(self) -> bool:
        """Whether the person is a tracked pensioner (latest record ``active``)."""
        return self.pension is not None and self.pension.active

    def to_bytes(self) -> bytes:
        """The compact byte form (orjson array)."""
        return orjson.dumps(
            [
                FORMAT,
                self.person_ref,
                _pension_out(self.pension),
                _death_out(self.death),
                _residence_out(self.residence),
                None if self.life is None else [self.life.day.toordinal(), self.life.refs],
                [self.held.days, self.held.kinds, self.held.ids, self.held.times],
            ]
        )

    def to_json(self) -> dict[str, Any]:
        """A readable, JSON-ready view (dates ISO, datasets by name), for explaining a
        decision to an officer; not the stored form."""
        pension, death, residence, life = self.pension, self.death, self.residence, self.life
        return {
            "person_ref": self.person_ref,
            "pension": None
            if pension is None
            else {
                "pensioner_account": pension.account,
                "tracked": pension.active,
                "qualified_until": pension.qualified_until.isoformat(),
                "suspended_on": _iso(pension.suspended_on),
                "reminded_for": _iso(pension.reminded_for),
                "last_confirmed": _iso(pension.last_confirmed),
                "final": pension.final,
                "record_id": pension.record_id,
            },
            "death": None
            if death is None
            else {
                "date_of_death": death.date_of_death.isoformat(),
                "evidence": [evidence_ref(ref) for ref in death.refs],
            },
            "residence": None
            if residence is None
            else {
                "birth_date": residence.birth_date.isoformat(),
                "resident": residence.resident,
                "allowance_tier": residence.tier,
                "allowance_stopped_from": residence.stopped_from,
                "record_id": residence.record_id,
            },
            "latest_qualifying_evidence": None
            if life is None
            else {"day": life.day.isoformat(), "evidence": [evidence_ref(r) for r in life.refs]},
            "held_evidence": [
                {
                    **evidence_ref(self.held.ref(index)),
                    "day": dt.date.fromordinal(day).isoformat(),
                    "weak": bool(self.held.kinds[index] & 1),
                }
                for index, day in enumerate(self.held.days)
            ],
        }

    @classmethod
    def from_bytes(cls, data: bytes) -> PersonState:
        """The state written by :meth:`to_bytes`."""
        try:
            parts = orjson.loads(data)
            if parts[0] != FORMAT:
                raise StateFormatError(f"unknown person state format {parts[0]!r}")
            _, person_ref, pension, death, residence, life, held = parts
            return cls(
                person_ref,
                _pension_in(pension),
                _death_in(death),
                _residence_in(residence),
                None if life is None else LifeState(_day(life[0]), _refs(life[1])),
                HeldEvidence(tuple(held[0]), tuple(held[1]), tuple(held[2]), tuple(held[3])),
            )
        except StateFormatError:
            raise
        except (orjson.JSONDecodeError, TypeError, ValueError, IndexError, KeyError) as exc:
            raise StateFormatError(f"cannot read person state: {exc}") from exc


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def _ordinal(day: dt.date | None) -> int | None:
    return None if day is None else day.toordinal()


def _day(ordinal: int) -> dt.date:
    return dt.date.fromordinal(ordinal)


def _maybe_day(ordinal: int | None) -> dt.date | None:
    return None if ordinal is None else dt.date.fromordinal(ordinal)


def _refs(rows: list[list[Any]]) -> tuple[Ref, ...]:
    return tuple((row[0], row[1], row[2]) for row in rows)


def _pension_out(pension: PensionState | None) -> list[Any] | None:
    if pension is None:
        return None
    return [
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


def _pension_in(row: list[Any] | None) -> PensionState | None:
    if row is None:
        return None
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
    )


def _death_out(death: DeathState | None) -> list[Any] | None:
    return None if death is None else [death.date_of_death.toordinal(), death.refs]


def _death_in(row: list[Any] | None) -> DeathState | None:
    return None if row is None else DeathState(_day(row[0]), _refs(row[1]))


def _residence_out(residence: ResidenceState | None) -> list[Any] | None:
    if residence is None:
        return None
    return [
        residence.record_at,
        residence.record_id,
        residence.birth_date.toordinal(),
        residence.resident,
        residence.tier,
        residence.stopped_from,
    ]


def _residence_in(row: list[Any] | None) -> ResidenceState | None:
    if row is None:
        return None
    return ResidenceState(row[0], row[1], _day(row[2]), row[3], row[4], row[5])
