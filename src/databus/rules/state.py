"""Everything the rules keep about one person, and its compact byte form.

All person-keyed topics are co-partitioned by ``person_ref``, so one state per person
carries the pension, the death, the residence (allowance), the recent evidence and the
records withdrawn by their agencies. The state is immutable: the rules return a new
one. Its bytes are an orjson array of plain values (dates as ordinals, evidence as
columns), written and read without pydantic (:mod:`databus.rules.codec`); a readable
view for officers is in :mod:`databus.rules.view`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

from databus.rules.evidence import EMPTY, HeldEvidence, Ref

MAX_ALERTS: Final = 100
"""Fraud alerts remembered per death, so that each can be withdrawn with the death or its
activity. Past this many, a death raises no more alerts: investigators already have a
hundred for it, and every alert raised can still be withdrawn."""

MAX_WITHDRAWN: Final = 64
"""Ids of withdrawn records remembered per person (the newest), so that a withdrawn
record delivered again, or after its retraction, does not count. Retractions are rare
(a handful in a life); a record withdrawn before the last 64 would count again if it
were delivered again."""

NO_RECORD: Final = -(2**62)
"""``record_at`` of a register with no record in force (its only record was withdrawn):
earlier than any instant, so that any record of that register applies."""

Withdrawn = tuple[tuple[int, str], ...]
"""Withdrawn records as (dataset code of :data:`~databus.rules.evidence.DATASETS`,
``ce_id``), oldest first: a retraction names the dataset, so one agency cannot withdraw
another's record by its id."""

Step = tuple[str, str, int, bool]
"""One allowance decision made by a tick: (tier, effective month ``YYYY-MM``, the tick's
day as an ordinal or 0 when not known, whether it was a grant rather than a tier
change)."""


@dataclass(frozen=True, slots=True)
class PreviousPensioner:
    """The pensioner record in force before the current one (restored if it is withdrawn)."""

    record_at: int
    record_id: str
    account: str
    active: bool


@dataclass(frozen=True, slots=True)
class PensionState:
    """A pension as the latest pensioner record and the decisions so far leave it."""

    record_at: int
    """Instant (µs since the epoch) of the latest pensioner record applied."""
    record_id: str
    """``ce_id`` of that record (breaks ties between records of the same instant); empty
    when its only record was withdrawn."""
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
    """``suspended`` / ``deceased`` was emitted for the death in force."""
    previous: PreviousPensioner | None = None
    """The record in force before this one, if any (one level only)."""


@dataclass(frozen=True, slots=True)
class DeathState:
    """The registered death: every death record's reference and date, and the alerts."""

    date_of_death: dt.date
    """The date of the earliest-arrived death record still in force (``dates[0]``)."""
    refs: tuple[Ref, ...]
    """Death evidence in order of arrival, first the record that fixes the date."""
    dates: tuple[dt.date, ...]
    """Each record's own date of death (parallel to ``refs``)."""
    alerted: tuple[Ref, ...] = ()
    """Activity for which a fraud alert is in force (each cites ``refs[0]``), at most
    :data:`MAX_ALERTS`."""


@dataclass(frozen=True, slots=True)
class PreviousHousehold:
    """The household record in force before the current one (restored if it is withdrawn)."""

    record_at: int
    record_id: str
    birth_date: dt.date
    resident: bool
    in_province: bool


@dataclass(frozen=True, slots=True)
class ResidenceState:
    """Household registration and old-age allowance."""

    record_at: int
    """Instant (µs since the epoch) of the latest household record applied."""
    record_id: str
    birth_date: dt.date
    resident: bool
    """Whether the latest record registers the person in the province."""
    in_province: bool = False
    """Whether the latest record's region lies in the province (whatever its event)."""
    tier: str | None = None
    """The allowance tier last granted, None if none ever was."""
    stopped_from: str | None = None
    """``YYYY-MM`` from which that allowance is stopped; None while it is in force."""
    stop: str = ""
    """Why it is stopped: ``deceased``, ``moved_out`` or ``retracted`` (empty if not)."""
    moved_out_from: str | None = None
    """``YYYY-MM`` from which leaving the province stops the current allowance (kept while
    a death stops it from earlier, so that the stop is right if the death is withdrawn)."""
    moved_out_by: str = ""
    """``ce_id`` of the household record that set ``moved_out_from``."""
    steps: tuple[Step, ...] = ()
    """The grants and tier changes of the allowance paid without a break up to now (a
    grant effective from the month a stop took effect continues it), oldest first."""
    granted_by: str = ""
    """``ce_id`` of the household record in force when the current allowance was granted."""
    previous: PreviousHousehold | None = None
    """The record in force before this one, if any (one level only)."""


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
    withdrawn: Withdrawn = ()
    epoch: int = 0
    """How many retractions and resets have changed this person's state. From the first
    on it is part of every decision id, so that a decision made again after one (a
    second death after a withdrawn one, say) is not taken for a duplicate."""

    @classmethod
    def empty(cls, person_ref: str) -> PersonState:
        """The state of a person the rules know nothing about yet."""
        return cls(person_ref)

    # Positional copies: the hot path avoids dataclasses.replace, which costs microseconds.
    def with_pension(self, pension: PensionState | None) -> PersonState:
        """This state with another pension."""
        return PersonState(
            self.person_ref,
            pension,
            self.death,
            self.residence,
            self.life,
            self.held,
            self.withdrawn,
            self.epoch,
        )

    def with_death(self, death: DeathState | None) -> PersonState:
        """This state with another death."""
        return PersonState(
            self.person_ref,
            self.pension,
            death,
            self.residence,
            self.life,
            self.held,
            self.withdrawn,
            self.epoch,
        )

    def with_residence(self, residence: ResidenceState | None) -> PersonState:
        """This state with another residence."""
        return PersonState(
            self.person_ref,
            self.pension,
            self.death,
            residence,
            self.life,
            self.held,
            self.withdrawn,
            self.epoch,
        )

    def with_evidence(self, life: LifeState | None, held: HeldEvidence) -> PersonState:
        """This state with another latest qualifying evidence and held log."""
        return PersonState(
            self.person_ref,
            self.pension,
            self.death,
            self.residence,
            life,
            held,
            self.withdrawn,
            self.epoch,
        )

    def with_withdrawn(self, withdrawn: Withdrawn, epoch: int) -> PersonState:
        """This state with other withdrawn records and epoch."""
        return PersonState(
            self.person_ref,
            self.pension,
            self.death,
            self.residence,
            self.life,
            self.held,
            withdrawn,
            epoch,
        )

    @property
    def tracked(self) -> bool:
        """Whether the person is a tracked pensioner (latest record ``active``)."""
        return self.pension is not None and self.pension.active

    def to_bytes(self) -> bytes:
        """The compact byte form (orjson array, format :data:`~databus.rules.codec.FORMAT`)."""
        return _codec.encode(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> PersonState:
        """The state written by :meth:`to_bytes` (this format or an older one)."""
        return _codec.decode(data)

    def to_json(self) -> dict[str, Any]:
        """A readable, JSON-ready view (dates ISO, datasets by name), for explaining a
        decision to an officer; not the stored form."""
        return _view.state_view(self)


# The byte form and the view need the classes above; imported last to break the cycle.
from databus.rules import codec as _codec  # noqa: E402
from databus.rules import view as _view  # noqa: E402
