"""A simulated province: its registers before day 1, then each day's agency records.

Everything is drawn when the province is built (a few seconds for 20,000 residents over
400 days); records are written out only when a day is read, in a fixed order, so the
same config always gives byte-identical output.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from databus.catalog import CATALOG
from databus.sim.config import SimulationConfig
from databus.sim.kinds import AgencyRecord, Values
from databus.sim.lives import draw_lives
from databus.sim.population import TIER_AGES, Resident, build_population
from databus.sim.schedule import DAY_SECONDS, Happening, Schedule

#: Every simulated date is local time in the province (Asia/Shanghai, no daylight saving).
UTC_OFFSET: Final = "+08:00"
#: The order datasets are listed in: the catalog's.
_DATASET_ORDER: Final = {dataset.name: rank for rank, dataset in enumerate(CATALOG)}


@dataclass(frozen=True, slots=True)
class Day:
    """One simulated day: the records that reach the bus that day, in time order."""

    index: int
    date: dt.date
    records: list[AgencyRecord]


@dataclass(frozen=True, slots=True)
class SimulationSummary:
    """What a simulation contains; ``records`` counts every record of the roster and the
    days, per dataset (the counts a consumer reads back from the topics)."""

    seed: int
    residents: int
    start: dt.date
    days: int
    records: dict[str, int]
    roster_records: int
    pensioners_at_start: int
    new_pensioners: int
    aged_80_plus_at_start: int
    deaths: int
    late_death_records: int
    moves_out: int
    elderly_moves_out: int
    moves_back: int
    habit_face_scans: int
    reminder_face_scans: int
    post_mortem_taps: int
    post_mortem_persons: int
    wrong_death_certificates: int = 0
    retractions: int = 0
    turned: dict[int, int] = field(default_factory=dict)
    """How many living residents reach 80, 90 and 100 during the span."""

    @property
    def total(self) -> int:
        """Every record of the simulation."""
        return sum(self.records.values())

    def rows(self) -> list[tuple[str, int]]:
        """The summary as (label, number) rows, for tables and logs."""
        rows = [(dataset, count) for dataset, count in self.records.items()]
        rows += [
            ("records in total", self.total),
            ("records before day 1 (registers)", self.roster_records),
            ("residents", self.residents),
            ("pensioners at the start", self.pensioners_at_start),
            ("new pensioners", self.new_pensioners),
            ("aged 80+ at the start", self.aged_80_plus_at_start),
            *((f"turning {age}", self.turned.get(age, 0)) for age in TIER_AGES),
            ("deaths", self.deaths),
            ("death records arriving late", self.late_death_records),
            ("moves out of the province", self.moves_out),
            ("of them aged 80+", self.elderly_moves_out),
            ("moves back in", self.moves_back),
            ("face scans out of habit", self.habit_face_scans),
            ("face scans after a reminder", self.reminder_face_scans),
            ("card uses after a death", self.post_mortem_taps),
            ("dead pensioners whose card was used", self.post_mortem_persons),
            ("death certificates issued by mistake", self.wrong_death_certificates),
            ("of them withdrawn (retractions)", self.retractions),
        ]
        return rows


class Province:
    """A reproducible synthetic province.

    The bus goes live on day 1: the registers (households, pensions) and each existing
    pensioner's last yearly face scan are loaded before it; no other evidence from before
    day 1 is on the bus, so the first year has more reminders than a later one would.
    Everyone is born before the start, and the publisher rejects an ID number whose birth
    date lies after today: start no later than today.

    >>> province = Province(SimulationConfig(seed=7, residents=200, days=30))
    >>> roster = province.roster()          # registers as of the day before the start
    >>> for day in province.days():         # then each day's records, in order
    ...     pass
    """

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.residents: list[Resident] = build_population(config)
        self._schedule = Schedule(config, self.residents)
        draw_lives(self._schedule)
        self._times: dict[int, str] = {}

    def roster(self) -> list[AgencyRecord]:
        """The records that exist before day 1, grouped so that they can be published in
        order: household registrations, then pensions, then last year's face scans (a
        roster loaded without them would see every pension past its deadline)."""
        return [self._record(happening) for happening in self._schedule.roster]

    def days(self) -> Iterator[Day]:
        """Each simulated day with the records that reach the bus that day."""
        schedule = self._schedule
        for index, happenings in enumerate(schedule.days):
            records = [self._record(happening) for happening in happenings]
            yield Day(index, schedule.date(index), records)

    def records(self) -> Iterator[AgencyRecord]:
        """Every record: the roster, then the days."""
        yield from self.roster()
        for day in self.days():
            yield from day.records

    def summary(self) -> SimulationSummary:
        """Counts of what the simulation contains (known before any day is read)."""
        config = self.config
        tally = self._schedule.tally
        counts = sorted(tally.records.items(), key=lambda item: _DATASET_ORDER[item[0]])
        start = config.start
        return SimulationSummary(
            seed=config.seed,
            residents=config.residents,
            start=start,
            days=config.days,
            records=dict(counts),
            roster_records=len(self._schedule.roster),
            pensioners_at_start=sum(
                1 for r in self.residents if r.pension is not None and r.pension.approved < start
            ),
            new_pensioners=tally.new_pensioners,
            aged_80_plus_at_start=sum(1 for r in self.residents if r.age_on(start) >= 80),  # noqa: PLR2004
            deaths=tally.deaths,
            late_death_records=tally.late_death_records,
            moves_out=tally.moves_out,
            elderly_moves_out=tally.elderly_moves_out,
            moves_back=tally.moves_back,
            habit_face_scans=tally.habit_face_scans,
            reminder_face_scans=tally.reminder_face_scans,
            post_mortem_taps=tally.post_mortem_taps,
            post_mortem_persons=tally.post_mortem_persons,
            wrong_death_certificates=tally.wrong_death_certificates,
            retractions=tally.retractions,
            turned=dict(tally.turned),
        )

    def _record(self, happening: Happening) -> AgencyRecord:
        occurred, sequence, kind, person, details = happening
        resident = self.residents[person]
        values: Values = {"citizen_id": resident.citizen_id, "occurred_at": self._time(occurred)}
        if kind.withdraws:
            details = (self._record(details[0]).values, *details[1:])
        values.update(kind.write(resident, sequence, *details))
        return AgencyRecord(kind.dataset, values)

    def _time(self, occurred: int) -> str:
        """RFC 3339 local time with offset, e.g. ``2025-01-01T08:13:42+08:00``."""
        ordinal, second = divmod(occurred, DAY_SECONDS)
        date = self._times.get(ordinal)
        if date is None:
            date = self._times[ordinal] = dt.date.fromordinal(ordinal).isoformat()
        hour, rest = divmod(second, 3600)
        minute, second = divmod(rest, 60)
        return f"{date}T{hour:02d}:{minute:02d}:{second:02d}{UTC_OFFSET}"
