"""Every resident's span: fate, activity, and the records that follow a death.

Each resident's life is drawn at once: whether and when they die or move out of the
province (and back), their hospital visits, exams and trips, their pension
(:mod:`databus.sim.pensions`), and the records that follow a death. Activity is a
Poisson process per resident whose rate depends on age (:mod:`databus.sim.demography`)
and on how active the person is; nothing happens to the dead (except a card that
someone else keeps using) or, in the province, to those who moved away.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Final

from databus.sim import kinds
from databus.sim.demography import (
    BUS_METRO_PROFILE,
    EXAM_PROFILE,
    FLIGHT_PROFILE,
    HOSPITAL_PROFILE,
    MOVE_PROFILE,
    RAIL_PROFILE,
    annual_mortality,
    by_age,
)
from databus.sim.geography import AIRPORTS, METRO_PREFIXES, OUT_OF_PROVINCE, counties_and_weights
from databus.sim.pensions import OLD_AGE, Pensions
from databus.sim.population import DAYS_PER_YEAR, TIER_AGES, Resident
from databus.sim.schedule import DAY_SECONDS, HOUR, Happening, Life, Schedule, office

#: Registers are exported for the bus the evening before the first day.
_SNAPSHOT_SECOND: Final = 20 * HOUR
_HOME_REGION_ON_RETURN: Final = 0.7
_METRO_SHARE: Final = 0.45
_HOSPITAL_DEATH_SHARE: Final = 0.6
_INPATIENT: Final = 0.07
_EMERGENCY: Final = 0.08
#: Mistaken death certificates come after the first days (evidence is on the bus by then).
_MISTAKE_EARLIEST: Final = 10
_MISTAKE_REASON: Final = "certificate issued for the wrong patient"
#: Health withdraws a mistaken certificate within this many days (always within the span).
_MISTAKE_FIXED_WITHIN: Final = 14


def draw_lives(schedule: Schedule) -> None:
    """Fill ``schedule`` with the roster and every resident's span, in time order."""
    _Lives(schedule).draw()
    schedule.sort()


class _Lives:
    """Draws every resident's life into a :class:`Schedule`."""

    def __init__(self, schedule: Schedule) -> None:
        config = schedule.config
        self.schedule = schedule
        self.config = config
        self.rates = config.rates
        self.fate = config.random("fate")
        self.activity = config.random("activity")
        self.pensions = Pensions(schedule, self.activity)
        self.counties, self.county_weights = counties_and_weights()
        ages = [r.age_on(config.start) for r in schedule.residents]
        self.ages = ages
        rates = self.rates
        self.hospital = _per_day(HOSPITAL_PROFILE, rates.hospital_visits_per_year, ages)
        self.exam = _per_day(EXAM_PROFILE, rates.physical_exams_per_year, ages)
        self.bus_metro = _per_day(BUS_METRO_PROFILE, rates.bus_metro_taps_per_year, ages)
        self.rail = _per_day(RAIL_PROFILE, rates.rail_trips_per_year, ages)
        self.flight = _per_day(FLIGHT_PROFILE, rates.flights_per_year, ages)
        self.moves = _per_day(MOVE_PROFILE, rates.moves_out_per_year, ages)
        self.showcase = config.random("showcase")
        oldest = [i for i, age in enumerate(ages) if age >= OLD_AGE]
        movers = self.showcase.sample(oldest, min(rates.min_elderly_moves_out, len(oldest)))
        self.elderly_movers = dict.fromkeys(movers)
        """Residents made to move out (see ``Rates.min_elderly_moves_out``), in order."""
        self.living_pensioners: list[int] = []
        """Pensioners at the start who live through the span (mistakes are made about them)."""

    def draw(self) -> None:
        """The roster (registrations, then pensions, then last year's face scans) and
        every resident's span."""
        schedule = self.schedule
        registered = [
            schedule.happening(-1, _SNAPSHOT_SECOND, kinds.REGISTERED, resident.index)
            for resident in schedule.residents
        ]
        pensions = [
            schedule.happening(-1, _SNAPSHOT_SECOND, kinds.PENSION_ACTIVE, resident.index)
            for resident in schedule.residents
            if resident.pension is not None and resident.pension.approved < self.config.start
        ]
        scans: list[Happening] = []
        for resident in schedule.residents:
            scans += self._life(resident)
        schedule.roster = registered + pensions + sorted(scans)
        self._mistaken_deaths()

    def _life(self, resident: Resident) -> list[Happening]:
        """Draw one resident's span; returns the face scans that precede it (roster)."""
        age = self.ages[resident.index]
        life = Life(resident, age, self.config.days)
        self._fate(life)
        strong = self._health(life) + self._travel(life)
        strong.sort()
        roster = self.pensions.draw(life, strong)
        if life.death is not None:
            self._death_records(life)
        elif resident.pension is not None and resident.pension.approved < self.config.start:
            self.living_pensioners.append(resident.index)
        self._count_birthdays(life)
        return roster

    def _fate(self, life: Life) -> None:
        """Whether and when this resident dies, moves out, and moves back."""
        rng = self.fate
        q = min(annual_mortality(life.age) * self.rates.mortality_scale, 0.999)
        hazard = -math.log1p(-q) / DAYS_PER_YEAR
        death = rng.expovariate(hazard) if hazard > 0 else math.inf
        if death < life.limit:
            life.death = int(death)
            life.limit = life.death
            self.schedule.tally.deaths += 1
        move = self.moves[life.age]
        out = rng.expovariate(move) if move > 0 else math.inf
        returns = rng.random() < self.rates.move_back_share
        back = int(out) + rng.randint(30, 300)
        person = life.resident.index
        if person in self.elderly_movers and out >= life.limit:
            out = self.showcase.randrange(max(1, self.config.days // 3))
            returns = person == next(iter(self.elderly_movers))
            back = int(out) + self.showcase.randint(30, 90)
        if out >= life.limit:
            return
        tally = self.schedule.tally
        life.out = int(out)
        life.away_region = rng.choice(OUT_OF_PROVINCE)
        self.schedule.add(life.out, office(rng), kinds.MOVED_OUT, person, life.away_region)
        tally.moves_out += 1
        tally.elderly_moves_out += 1 if life.age >= OLD_AGE else 0
        if not returns or back >= life.limit:
            return
        life.back = back
        if rng.random() >= _HOME_REGION_ON_RETURN:
            life.back_region = rng.choices(self.counties, self.county_weights)[0]
        self.schedule.add(back, office(rng), kinds.MOVED_IN, person, life.back_region)
        tally.moves_back += 1

    def _health(self, life: Life) -> list[int]:
        """Hospital visits and exams in the province; returns the days of strong evidence."""
        rng = self.activity
        schedule = self.schedule
        person = life.resident.index
        age = life.age
        health = life.resident.health
        strong: list[int] = []
        verified_share = self.rates.hospital_verified_share
        for day in _arrivals(rng, self.hospital[age] * health, life.limit):
            if not life.present(day):
                continue
            region = life.region_on(day)
            draw = rng.random()
            if draw < _INPATIENT:
                kind, second, verified = "inpatient", rng.randrange(8 * HOUR, 18 * HOUR), True
            elif draw < _INPATIENT + _EMERGENCY:
                kind, second = "emergency", rng.randrange(DAY_SECONDS)
                verified = rng.random() < verified_share
            else:
                kind, second = "outpatient", rng.randrange(7 * HOUR + 1800, 17 * HOUR + 1800)
                verified = rng.random() < verified_share
            hospital = f"H{region}{rng.randint(1, 3):03d}"
            schedule.add(day, second, kinds.HOSPITAL_VISIT, person, kind, verified, hospital)
            if verified:
                strong.append(day)
        for day in _arrivals(rng, self.exam[age] * health, life.limit):
            if life.present(day):
                institution = f"C{life.region_on(day)}{rng.randint(1, 5):03d}"
                second = rng.randrange(7 * HOUR + 1800, 11 * HOUR)
                schedule.add(day, second, kinds.PHYSICAL_EXAM, person, institution)
                strong.append(day)
        return strong

    def _travel(self, life: Life) -> list[int]:
        """Bus, metro, rail and air trips (sampled); returns the identity-checked days."""
        rng = self.activity
        schedule = self.schedule
        person = life.resident.index
        age = life.age
        mobility = life.resident.mobility
        strong: list[int] = []
        for day in _arrivals(rng, self.bus_metro[age] * mobility, life.limit):
            if life.present(day):
                mode, station = _local_trip(rng, life.region_on(day))
                second = rng.randrange(6 * HOUR, 22 * HOUR)
                schedule.add(day, second, kinds.TRANSIT_TAP, person, mode, station)
        for day in _arrivals(rng, self.rail[age] * mobility, life.limit):
            if life.present(day):
                station = f"RS{life.region_on(day)[:4]}-{rng.randint(1, 4):02d}"
                second = rng.randrange(6 * HOUR + 1800, 21 * HOUR + 1800)
                schedule.add(day, second, kinds.TRANSIT_TAP, person, "rail", station)
                strong.append(day)
        for day in _arrivals(rng, self.flight[age] * mobility, life.limit):
            if life.present(day):
                second = rng.randrange(6 * HOUR + 1800, 22 * HOUR)
                schedule.add(day, second, kinds.TRANSIT_TAP, person, "flight", rng.choice(AIRPORTS))
                strong.append(day)
        return strong

    def _death_records(self, life: Life) -> None:
        """Death certificate, funeral and deregistration, each with its own delay; the
        pension is terminated later; sometimes the dead person's card is used."""
        assert life.death is not None  # noqa: S101 - only called for the dead
        rng = self.fate
        rates = self.rates
        schedule = self.schedule
        tally = schedule.tally
        person = life.resident.index
        death = life.death
        date_of_death = schedule.date(death)
        region = life.region_on(death)
        if rng.random() < rates.death_certificate_share:
            issued = death + rng.choice((0, 0, 0, 1, 1, 2))
            if rng.random() < _HOSPITAL_DEATH_SHARE:
                institution = f"H{region}{rng.randint(1, 3):03d}"
            else:
                institution = f"C{region}{rng.randint(1, 5):03d}"
            late = rng.randint(14, 60) if rng.random() < rates.late_record_share else 0
            second = rng.randrange(DAY_SECONDS)
            kind = kinds.DEATH_CERTIFICATE
            arrives = issued + late
            if schedule.add(
                issued, second, kind, person, date_of_death, institution, arrives=arrives
            ):
                tally.late_death_records += 1 if late else 0
        if rng.random() < rates.funeral_share:
            held = death + rng.randint(2, 5)
            late = rng.randint(7, 45) if rng.random() < rates.late_record_share else 0
            second = rng.randrange(6 * HOUR, 12 * HOUR)
            kind = kinds.FUNERAL
            arrives = held + late
            if schedule.add(
                held, second, kind, person, date_of_death, f"FH{region}", arrives=arrives
            ):
                tally.late_death_records += 1 if late else 0
        if rng.random() < rates.deregistration_share:
            delay = min(180, max(3, round(rng.lognormvariate(math.log(20), 0.8))))
            schedule.add(
                death + delay, office(rng), kinds.DEREGISTERED, person, region, date_of_death
            )
        plan = life.resident.pension
        if plan is None or schedule.index(plan.approved) >= death:
            return
        if rng.random() < rates.post_mortem_card_share:
            # Whoever keeps using the card keeps the pension too: hrss is not told, so
            # no termination follows, and the alert cannot depend on which topic the
            # worker happens to read first.
            used = sorted(rng.sample(range(death + 1, death + 41), rng.randint(2, 6)))
            taps = 0
            for day in used:
                mode, station = _local_trip(rng, life.resident.region_code)
                second = rng.randrange(6 * HOUR, 22 * HOUR)
                if schedule.add(day, second, kinds.TRANSIT_TAP, person, mode, station):
                    taps += 1
            tally.post_mortem_taps += taps
            tally.post_mortem_persons += 1 if taps else 0
        elif rng.random() < rates.pension_termination_share:
            terminated = death + rng.randint(30, 90)
            schedule.add(terminated, office(rng), kinds.PENSION_TERMINATED, person)

    def _mistaken_deaths(self) -> None:
        """Death certificates for living pensioners, each withdrawn by health a few days
        later (``Rates.wrong_death_certificates_per_year``); from a stream of its own, so
        that every other record stays as it was."""
        rng = self.config.random("mistakes")
        days = self.config.days
        candidates = self.living_pensioners
        if not candidates or days <= _MISTAKE_EARLIEST + _MISTAKE_FIXED_WITHIN:
            return
        expected = self.rates.wrong_death_certificates_per_year * len(candidates) * days / 365
        count = max(self.rates.min_wrong_death_certificates, _poisson(rng, expected))
        schedule = self.schedule
        for person in rng.sample(candidates, min(count, len(candidates))):
            day = rng.randrange(_MISTAKE_EARLIEST, days - _MISTAKE_FIXED_WITHIN)
            region = self.schedule.residents[person].region_code
            certificate = schedule.add(
                day, rng.randrange(8 * HOUR, 18 * HOUR), kinds.DEATH_CERTIFICATE, person,
                schedule.date(day - rng.randint(0, 2)), f"H{region}{rng.randint(1, 3):03d}",
            )  # fmt: skip
            if certificate is None:
                continue
            schedule.tally.wrong_death_certificates += 1
            withdrawn = schedule.add(
                day + rng.randint(2, _MISTAKE_FIXED_WITHIN), office(rng), kinds.HEALTH_RETRACTION,
                person,
                certificate, kinds.DEATH_CERTIFICATE.dataset, _MISTAKE_REASON,
            )  # fmt: skip
            assert withdrawn is not None  # noqa: S101 - scheduled within the span
            schedule.tally.retractions += 1

    def _count_birthdays(self, life: Life) -> None:
        config = self.config
        for age in TIER_AGES:
            birthday = life.resident.birthday(age)
            if config.start <= birthday < config.end and self.schedule.index(birthday) < life.limit:
                self.schedule.tally.turned[age] += 1


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method: the means here are small)."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _per_day(
    profile: tuple[tuple[int, float], ...], per_year: float, ages: list[int]
) -> tuple[float, ...]:
    """Per-day rates by age whose population mean is ``per_year`` a year."""
    weights = by_age(profile)
    mean = sum(weights[age] for age in ages) / len(ages)
    scale = per_year / DAYS_PER_YEAR / mean if mean else 0.0
    return tuple(weight * scale for weight in weights)


def _arrivals(rng: random.Random, per_day: float, limit: int) -> Iterator[int]:
    """The days (0 <= day < limit) of a Poisson process with ``per_day`` events a day."""
    if per_day <= 0:
        return
    t = rng.expovariate(per_day)
    while t < limit:
        yield int(t)
        t += rng.expovariate(per_day)


def _local_trip(rng: random.Random, region: str) -> tuple[str, str]:
    """A bus or (in cities with one) metro tap near home."""
    if region[:4] in METRO_PREFIXES and rng.random() < _METRO_SHARE:
        return "metro", f"M{region[:4]}-{rng.randint(1, 60):02d}"
    return "bus", f"B{region}-{rng.randint(1, 400):03d}"
