"""The happenings of a simulated province, kept compact and bucketed by day of arrival.

A happening is a time, a kind (:mod:`databus.sim.kinds`), a resident and a few details;
it becomes an agency record only when its day is read. :mod:`databus.sim.lives` fills a
schedule with every resident's span.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

from databus.sim import kinds
from databus.sim.config import SimulationConfig
from databus.sim.population import TIER_AGES, Resident

Happening = tuple[int, int, kinds.Kind, int, tuple[Any, ...]]
"""``(occurred, sequence, kind, resident index, details)``; ``occurred`` counts local
seconds from 0001-01-01, so sorting a day's happenings puts them in time order."""

DAY_SECONDS: Final = 86_400
HOUR: Final = 3_600
OFFICE_HOURS: Final = (9 * HOUR, 17 * HOUR)


@dataclass(slots=True)
class Tally:
    """What happened during the span (for the summary)."""

    records: Counter[str] = field(default_factory=Counter)
    deaths: int = 0
    moves_out: int = 0
    elderly_moves_out: int = 0
    moves_back: int = 0
    new_pensioners: int = 0
    habit_face_scans: int = 0
    reminder_face_scans: int = 0
    post_mortem_taps: int = 0
    post_mortem_persons: int = 0
    late_death_records: int = 0
    wrong_death_certificates: int = 0
    retractions: int = 0
    turned: dict[int, int] = field(default_factory=lambda: dict.fromkeys(TIER_AGES, 0))


class Schedule:
    """The happenings of a province: the roster before day 1, then one list per day."""

    def __init__(self, config: SimulationConfig, residents: list[Resident]) -> None:
        self.config = config
        self.residents = residents
        self.roster: list[Happening] = []
        self.days: list[list[Happening]] = [[] for _ in range(config.days)]
        self.tally = Tally()
        self._sequence = 0
        self._start = config.start.toordinal()

    def date(self, day: int) -> dt.date:
        """The date of day index ``day`` (0 is the start)."""
        return dt.date.fromordinal(self._start + day)

    def index(self, date: dt.date) -> int:
        """The day index of ``date``."""
        return date.toordinal() - self._start

    def add(
        self,
        day: int,
        second: int,
        kind: kinds.Kind,
        person: int,
        *details: Any,
        arrives: int | None = None,
    ) -> Happening | None:
        """A record of something on ``day`` that reaches the bus on ``arrives`` (default:
        the same day), or None when it would arrive after the span."""
        arrival = day if arrives is None else arrives
        if arrival >= self.config.days:
            return None
        happening = self.happening(day, second, kind, person, *details)
        self.days[arrival].append(happening)
        return happening

    def sort(self) -> None:
        """Put each day's happenings in time order (once everything is scheduled)."""
        for day in self.days:
            day.sort()

    def happening(
        self, day: int, second: int, kind: kinds.Kind, person: int, *details: Any
    ) -> Happening:
        """A new happening, counted in the tally; the caller keeps it."""
        self._sequence += 1
        self.tally.records[kind.dataset] += 1
        occurred = (self._start + day) * DAY_SECONDS + second
        return (occurred, self._sequence, kind, person, details)


@dataclass(slots=True)
class Life:
    """One resident's fate during the span (day indices)."""

    resident: Resident
    age: int
    limit: int
    """The first day nothing more happens to them (the death, or the end)."""
    death: int | None = None
    out: int | None = None
    back: int | None = None
    away_region: str = ""
    back_region: str | None = None
    tracked_from: int = 0

    def present(self, day: int) -> bool:
        """Whether they live in the province on ``day``."""
        if self.out is None or day < self.out:
            return True
        return self.back is not None and day >= self.back

    def region_on(self, day: int) -> str:
        """Where they are registered on ``day``."""
        if self.out is None or day < self.out:
            return self.resident.region_code
        if self.back is not None and day >= self.back:
            return self.back_region or self.resident.region_code
        return self.away_region


def office(rng: random.Random) -> int:
    """A second of the day in office hours."""
    return rng.randrange(*OFFICE_HOURS)
