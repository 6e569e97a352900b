"""The residents of a simulated province on the day before the start.

Each resident has a valid 18-digit ID number (GB 11643): the county where they were
registered at birth, the birth date, a three-digit sequence whose last digit is odd for
men and even for women, and the ISO 7064 MOD 11-2 check character.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Final, Literal

from databus.identity import check_character
from databus.rules.dates import add_months
from databus.sim.config import SimulationConfig
from databus.sim.demography import AGE_PYRAMID, BAND_YEARS, male_share
from databus.sim.geography import counties_and_weights

DAYS_PER_YEAR: Final = 365.2425
#: The allowance tiers' ages (DOMAIN.md §2): the summary counts who reaches them.
TIER_AGES: Final = (80, 90, 100)
#: Share of residents whose ID number was issued in another county of the province.
_BORN_ELSEWHERE: Final = 0.15
_PENSION_AGE: Final = 60
_EARLY_PENSION_AGES: Final = (50, 55)

Scheme = Literal["employee", "resident"]


@dataclass(frozen=True, slots=True)
class PensionPlan:
    """A pension that is paid before or from some day of the span."""

    account: str
    scheme: Scheme
    benefit_start: dt.date
    monthly_amount_cents: int
    approved: dt.date
    """When hrss approved it: before the start for pensioners on the roster."""


@dataclass(frozen=True, slots=True)
class Resident:
    """One person registered in the province at the start."""

    index: int
    citizen_id: str
    birth_date: dt.date
    male: bool
    region_code: str
    card_id: str
    health: float
    """How often this person sees a doctor, relative to others of the same age (mean 1)."""
    mobility: float
    """How often this person travels, relative to others of the same age (mean 1)."""
    pension: PensionPlan | None

    def age_on(self, day: dt.date) -> int:
        """Completed years of age on ``day``."""
        born = self.birth_date
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

    def birthday(self, age: int) -> dt.date:
        """The day this person turns ``age`` (29 February births: 28 February)."""
        return add_months(self.birth_date, 12 * age)


def build_population(config: SimulationConfig) -> list[Resident]:
    """Draw ``config.residents`` residents; the same config gives the same residents."""
    rng = config.random("population")
    births = _birth_dates(rng, config)
    _ensure_tier_crossings(rng, config, births)
    codes, weights = counties_and_weights()
    regions = rng.choices(codes, weights, k=config.residents)
    taken: set[str] = set()
    residents = []
    for index, (born, region) in enumerate(zip(births, regions, strict=True)):
        age = _age(born, config.start)
        male = rng.random() < male_share(age)
        birth_region = rng.choice(codes) if rng.random() < _BORN_ELSEWHERE else region
        citizen_id = _citizen_id(rng, birth_region, born, male, taken)
        residents.append(
            Resident(
                index=index,
                citizen_id=citizen_id,
                birth_date=born,
                male=male,
                region_code=region,
                card_id=f"TC-{region[:4]}-{rng.randrange(10**8):08d}",
                health=rng.gammavariate(3.0, 1 / 3),
                mobility=rng.gammavariate(0.6, 1 / 0.6),
                pension=_pension(rng, config, index=index, region=region, born=born, male=male),
            )
        )
    return residents


def _age(born: dt.date, day: dt.date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _birth_dates(rng: random.Random, config: SimulationConfig) -> list[dt.date]:
    """Birth dates that follow the age pyramid, all before the start."""
    bands = rng.choices(range(len(AGE_PYRAMID)), AGE_PYRAMID, k=config.residents)
    last = config.start.toordinal() - 1
    return [
        dt.date.fromordinal(last - int((band + rng.random()) * BAND_YEARS * DAYS_PER_YEAR))
        for band in bands
    ]


def _ensure_tier_crossings(
    rng: random.Random, config: SimulationConfig, births: list[dt.date]
) -> None:
    """Move the birthdays of a few residents of about the right age so that at least
    ``min_tier_crossings`` reach each tier within the first two thirds of the span."""
    wanted = config.rates.min_tier_crossings
    window = max(1, config.days * 2 // 3)
    crossing: set[int] = set()
    for tier in TIER_AGES:
        already = [
            i for i, born in enumerate(births) if config.start <= _turns(born, tier) < config.end
        ]
        crossing.update(already)
        missing = wanted - len(already)
        if missing <= 0:
            continue
        near = [
            i
            for i, born in enumerate(births)
            if i not in crossing and abs(_age(born, config.start) - tier) < BAND_YEARS
        ]
        for i in rng.sample(near, min(missing, len(near))):
            target = config.start + dt.timedelta(days=rng.randrange(window))
            births[i] = add_months(target, -12 * tier)
            crossing.add(i)


def _turns(born: dt.date, age: int) -> dt.date:
    return add_months(born, 12 * age)


def _citizen_id(rng: random.Random, region: str, born: dt.date, male: bool, taken: set[str]) -> str:
    """A valid, unused ID number; the sequence's last digit is odd for men."""
    while True:
        sequence = rng.randrange(500) * 2 + (1 if male else 0)
        first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
        citizen_id = first17 + check_character(first17)
        if citizen_id not in taken:
            taken.add(citizen_id)
            return citizen_id


def _pension(
    rng: random.Random,
    config: SimulationConfig,
    *,
    index: int,
    region: str,
    born: dt.date,
    male: bool,
) -> PensionPlan | None:
    """The pension this resident draws by the end of the span, if any.

    Men and the resident scheme start at 60; some women retire from the employee scheme
    at 50 or 55. A benefit starts on the first day of the month after the birthday.
    """
    rates = config.rates
    early = not male and rng.random() < rates.early_retirement_share
    if early:
        scheme: Scheme = "employee"
        pension_age = rng.choice(_EARLY_PENSION_AGES)
    else:
        if rng.random() >= rates.pension_share_over_60:
            return None
        scheme = "employee" if rng.random() < rates.employee_scheme_share else "resident"
        pension_age = _PENSION_AGE
    birthday = _turns(born, pension_age)
    benefit_start = add_months(birthday.replace(day=1), 1)
    approved = benefit_start - dt.timedelta(days=rng.randint(3, 20))
    if approved >= config.end:
        return None
    return PensionPlan(
        account=f"PA-{region}-{index:06d}",
        scheme=scheme,
        benefit_start=benefit_start,
        monthly_amount_cents=_monthly_amount(rng, scheme),
        approved=approved,
    )


def _monthly_amount(rng: random.Random, scheme: Scheme) -> int:
    """Employee pensions around 3,600 yuan a month, resident-scheme ones a few hundred."""
    if scheme == "employee":
        yuan = max(1_500.0, rng.gauss(3_600.0, 900.0))
    else:
        yuan = rng.uniform(150.0, 400.0)
    return round(yuan) * 100
