"""The shape of the population: age pyramid, death rates, sex ratio, activity by age.

Numbers follow China around the 2020 census (five-year age bands, both sexes); they are
meant to be plausible, not official statistics.
"""

from __future__ import annotations

import bisect
from typing import Final

#: Share of the population (percent) in each five-year band from 0-4 to 95-99, then 100+.
AGE_PYRAMID: Final = (
    5.5,  # 0-4
    6.4,  # 5-9
    6.4,  # 10-14
    5.3,  # 15-19
    5.3,  # 20-24
    6.6,  # 25-29
    8.8,  # 30-34
    7.0,  # 35-39
    6.8,  # 40-44
    8.2,  # 45-49
    8.6,  # 50-54
    7.2,  # 55-59
    5.2,  # 60-64
    5.3,  # 65-69
    3.6,  # 70-74
    2.3,  # 75-79
    1.5,  # 80-84
    0.8,  # 85-89
    0.27,  # 90-94
    0.07,  # 95-99
    0.008,  # 100-104
)
BAND_YEARS: Final = 5

#: Annual probability of death by age (lower bound of the age range, probability).
_MORTALITY: Final = (
    (0, 0.0054),
    (1, 0.0004),
    (5, 0.0002),
    (15, 0.0004),
    (25, 0.0006),
    (35, 0.0012),
    (45, 0.0028),
    (55, 0.0055),
    (60, 0.0085),
    (65, 0.0135),
    (70, 0.023),
    (75, 0.04),
    (80, 0.07),
    (85, 0.12),
    (90, 0.2),
    (95, 0.3),
    (100, 0.4),
)

#: Share of men by age: women live longer, so the oldest are mostly women.
_MALE_SHARE: Final = ((0, 0.53), (20, 0.51), (60, 0.49), (70, 0.47), (80, 0.42), (90, 0.35))


#: Ages beyond this one are looked up as this one.
MAX_AGE: Final = 110


def by_age(table: tuple[tuple[int, float], ...]) -> tuple[float, ...]:
    """A table of (lowest age, value) rows spelled out for every age from 0 to MAX_AGE."""
    lowers = [lower for lower, _ in table]
    return tuple(
        table[max(bisect.bisect_right(lowers, age) - 1, 0)][1] for age in range(MAX_AGE + 1)
    )


def annual_mortality(age: int) -> float:
    """The probability that someone of ``age`` dies within a year."""
    return _MORTALITY_BY_AGE[min(age, MAX_AGE)]


def male_share(age: int) -> float:
    """The share of men among people of ``age``."""
    return _MALE_SHARE_BY_AGE[min(age, MAX_AGE)]


_MORTALITY_BY_AGE: Final = by_age(_MORTALITY)
_MALE_SHARE_BY_AGE: Final = by_age(_MALE_SHARE)


#: Relative frequency of each activity by age (lower bound of the age range, weight);
#: the rates in the config are population means, so only the ratios matter.
HOSPITAL_PROFILE: Final = ((0, 0.8), (15, 0.6), (45, 1.0), (60, 1.8), (70, 2.4), (80, 3.0))
EXAM_PROFILE: Final = ((0, 0.3), (15, 0.6), (60, 0.8), (65, 3.0))
BUS_METRO_PROFILE: Final = ((0, 0.0), (7, 0.6), (15, 1.5), (25, 1.0), (60, 1.3), (80, 0.5))
RAIL_PROFILE: Final = ((0, 0.4), (15, 1.2), (60, 0.7), (80, 0.2))
FLIGHT_PROFILE: Final = ((0, 0.3), (15, 1.3), (60, 0.5), (80, 0.1))
MOVE_PROFILE: Final = ((0, 0.7), (18, 2.0), (40, 0.8), (60, 0.5), (75, 0.8))
