"""What a simulated province looks like: its size, its span, and the rates of everything.

Rates of activity are population means per resident per year; each kind of activity is
spread over the ages by a fixed profile (:mod:`databus.sim.demography`), so the total
volume is predictable: about ``rate * residents * days / 365`` records. The simulator
draws them day by day. Transit taps are *sampled*: a real card is tapped far more often
than the simulated rate, and only a sample of the taps is published.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

from databus.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Rates:
    """How often things happen; shares are fractions between 0 and 1."""

    hospital_visits_per_year: float = 1.5
    """Visits to hospitals connected to the bus, per resident and year (older: more)."""
    hospital_verified_share: float = 0.7
    """Share of outpatient and emergency visits with an identity check (inpatients: all)."""
    physical_exams_per_year: float = 0.2
    """Physical exams per resident and year (mostly the free yearly exam at 65+)."""
    bus_metro_taps_per_year: float = 4.5
    """Sampled bus and metro taps per resident and year (weak evidence: no ID check)."""
    rail_trips_per_year: float = 0.8
    """Sampled rail boardings per resident and year (identity-checked: strong evidence)."""
    flights_per_year: float = 0.15
    """Sampled flight boardings per resident and year (identity-checked)."""
    mortality_scale: float = 1.0
    """Multiplies the age-specific death rates of the life table (1.0: China, about 2020)."""
    moves_out_per_year: float = 0.004
    """Moves of the household registration out of the province, per resident and year."""
    move_back_share: float = 0.3
    """Share of those who move out that move back in within the span (30-300 days later)."""
    pension_share_over_60: float = 0.9
    """Share of residents aged 60+ who draw a pension (employee or resident scheme)."""
    early_retirement_share: float = 0.2
    """Share of women who retire at 50 or 55 from the employee scheme."""
    employee_scheme_share: float = 0.45
    """Share of pensioners in the employee scheme (the rest: the resident scheme)."""
    face_scan_habit_share: float = 0.25
    """Share of pensioners who do a face scan each year before their deadline anyway."""
    reminder_response_share: float = 0.85
    """Share of pensioners left without evidence who answer the reminder with a face scan
    within 32 days (some after the deadline, so their pension is suspended, then resumed)."""
    death_certificate_share: float = 0.95
    """Share of deaths with a medical death certificate."""
    funeral_share: float = 0.9
    """Share of deaths with a funeral home (cremation) record."""
    deregistration_share: float = 0.9
    """Share of deaths that the family deregisters at the police station (days to months)."""
    pension_termination_share: float = 0.8
    """Share of deceased pensioners whose pension hrss terminates 30-90 days after the death
    (never those whose card is still used: whoever uses it keeps the pension too)."""
    late_record_share: float = 0.1
    """Share of death certificates and funeral records that reach the bus weeks late."""
    post_mortem_card_share: float = 0.1
    """Share of deceased pensioners whose transit card is used (2-6 bus or metro taps in
    the 40 days after the death): the post-mortem activity that fraud alerts are for."""
    wrong_death_certificates_per_year: float = 0.001
    """Death certificates issued by mistake for a living pensioner, per pensioner and year
    (a certificate filed under the wrong patient); health withdraws each 2-14 days later
    with a retraction (health.retraction.v1) carrying the certificate; both lie within the
    span (a mistake near its end is not simulated)."""
    min_wrong_death_certificates: int = 1
    """At least this many such mistakes (and their retractions) within the span when there
    are living pensioners, so that the demo shows a retraction reinstating a pension."""
    min_tier_crossings: int = 1
    """At least this many residents turn 80, 90 and 100 within the span when the population
    has anyone of about that age (a realistic pyramid of 20,000 has under one centenarian-
    to-be; the demo should show every tier)."""
    min_elderly_moves_out: int = 1
    """At least this many residents aged 80+ move out of the province within the first third
    of the span (the first of them back 30-90 days later), so that allowances are stopped
    for a move and granted again; at the realistic rate a province of 20,000 sees one or
    two such moves a year, or none."""

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if value < 0:
                raise ConfigurationError(f"rate {spec.name} must not be negative, got {value}")
            if spec.name.endswith("_share") and value > 1:
                raise ConfigurationError(f"rate {spec.name} is a share, got {value} > 1")

    def replaced(self, overrides: dict[str, str]) -> Rates:
        """These rates with some changed, from ``name=value`` text (the CLI's ``--rate``)."""
        known = {spec.name: spec.type for spec in dataclasses.fields(self)}
        values: dict[str, Any] = {}
        for name, text in overrides.items():
            if name not in known:
                raise ConfigurationError(f"unknown rate {name!r}; known: {', '.join(known)}")
            try:
                values[name] = int(text) if known[name] == "int" else float(text)
            except ValueError:
                raise ConfigurationError(f"rate {name}: not a number: {text!r}") from None
        return dataclasses.replace(self, **values)


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """One simulated province: the same config always gives the same records."""

    seed: int = 7
    """Seeds every random draw; nothing reads the global random state or the wall clock."""
    residents: int = 20_000
    """Residents registered in the province on the day before the start."""
    start: dt.date = dt.date(2025, 1, 1)
    """The first simulated day."""
    days: int = 400
    """How many days are simulated."""
    rates: Rates = field(default_factory=Rates)
    """How often things happen."""

    def __post_init__(self) -> None:
        if self.residents < 1:
            raise ConfigurationError(f"residents must be at least 1, got {self.residents}")
        if self.days < 1:
            raise ConfigurationError(f"days must be at least 1, got {self.days}")

    def random(self, stream: str) -> random.Random:
        """An independent, reproducible random stream of this simulation (``population``,
        ``fate``, ...): changing how one stream is used leaves the others alone."""
        return random.Random(f"databus-sim/{self.seed}/{stream}")  # noqa: S311 - not for secrets

    @property
    def end(self) -> dt.date:
        """The day after the last simulated day."""
        return self.start + dt.timedelta(days=self.days)
