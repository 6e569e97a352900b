"""The numbers of the decision rules (DOMAIN.md), loaded from a policy file.

The packaged ``policy.toml`` holds the defaults of DOMAIN.md; an operator may pass their
own file with the same keys (keys left out keep the default). Unknown keys and bad values
are refused with the file and the dotted key, so a typo can never silently fall back to a
default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from databus.errors import ConfigurationError

TIER_AGES: Final[dict[str, int]] = {"80-89": 80, "90-99": 90, "100+": 100}
"""The allowance tiers of the dataset contract and the age at which each begins."""

_MAX_CENTS = 10**12
_MAX_DAYS = 3660
"""Longest span in days a policy may set (ten years): with every date on the bus before
2200 (records.base.LATEST), a deadline, a reminder window or a retention computed from
it stays far inside the calendar."""

_BOUNDS: Final[dict[str, tuple[int, int]]] = {
    "cycle_months": (1, 120),
    "reminder_days": (0, _MAX_DAYS),
    "confirmation_quiet_days": (0, _MAX_DAYS),
    "weak_events": (1, 100),
    "weak_window_days": (0, _MAX_DAYS),
    "evidence_retention_days": (90, _MAX_DAYS),
}
"""The range of every integer of the policy. Upper bounds keep the rules' arithmetic in
the calendar (``d + cycle_months`` for any day before 2200) and a person's state small
(a weak run is looked for among at most ``weak_events`` days)."""
_MAX_VERSION = 64


@dataclass(frozen=True, slots=True)
class Tier:
    """One allowance tier: its contract name, the age it begins at, its monthly amount."""

    name: str
    min_age: int
    monthly_amount_cents: int


def _default_tiers() -> tuple[Tier, ...]:
    amounts = {"80-89": 10000, "90-99": 20000, "100+": 50000}
    return tuple(Tier(name, age, amounts[name]) for name, age in TIER_AGES.items())


@dataclass(frozen=True)
class Policy:
    """Every number the rules use; the defaults are those of DOMAIN.md."""

    time_zone: str = "Asia/Shanghai"
    """IANA zone in which calendar dates are taken."""
    pension_rule_version: str = "pension/1"
    """``rule_version`` of pension status decisions and fraud alerts."""
    cycle_months: int = 12
    """Months one qualifying evidence keeps a pension qualified."""
    reminder_days: int = 30
    """Days before ``qualified_until`` from which a reminder is due."""
    confirmation_quiet_days: int = 30
    """Days after a ``confirmed`` during which no other ``confirmed`` is emitted."""
    weak_events: int = 3
    """Weak events, on as many different days, that count as one qualifying event."""
    weak_window_days: int = 30
    """Largest gap in days between the earliest and the latest of those weak events."""
    evidence_retention_days: int = 90
    """Days of a tracked pensioner's evidence kept for late death records (>= 90)."""
    allowance_rule_version: str = "allowance/1"
    """``rule_version`` of old-age allowance decisions."""
    province_prefix: str = "37"
    """Region-code prefix of the province (GB/T 2260)."""
    tiers: tuple[Tier, ...] = field(default_factory=_default_tiers)
    """Allowance tiers, youngest first."""
    zone: ZoneInfo = field(init=False, repr=False, compare=False)
    """The time zone, resolved once."""

    def __post_init__(self) -> None:
        try:
            zone = ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigurationError(f"time_zone: unknown time zone {self.time_zone!r}") from exc
        object.__setattr__(self, "zone", zone)
        for name, (minimum, maximum) in _BOUNDS.items():
            value = getattr(self, name)
            if type(value) is not int or not minimum <= value <= maximum:
                raise ConfigurationError(
                    f"{name}: expected an integer from {minimum} to {maximum}, got {value!r}"
                )
        if self.evidence_retention_days < self.weak_window_days:
            raise ConfigurationError("evidence_retention_days: must be >= weak_window_days")
        for name in ("pension_rule_version", "allowance_rule_version"):
            version = getattr(self, name)
            if not isinstance(version, str) or not 0 < len(version) <= _MAX_VERSION:
                raise ConfigurationError(
                    f"{name}: expected a non-empty string of at most {_MAX_VERSION} characters"
                )
        prefix = self.province_prefix
        if not (isinstance(prefix, str) and prefix.isascii() and prefix.isdigit()):
            raise ConfigurationError(f"province_prefix: expected 1-6 digits, got {prefix!r}")
        if len(prefix) > 6:  # noqa: PLR2004 - region codes have six digits
            raise ConfigurationError(f"province_prefix: expected 1-6 digits, got {prefix!r}")
        names = [tier.name for tier in self.tiers]
        if names != list(TIER_AGES):
            raise ConfigurationError(f"tiers: expected exactly {list(TIER_AGES)}, got {names}")
        for tier in self.tiers:
            if tier.min_age != TIER_AGES[tier.name]:
                raise ConfigurationError(f"tiers: {tier.name} begins at {TIER_AGES[tier.name]}")
            cents = tier.monthly_amount_cents
            if type(cents) is not int or not 0 <= cents <= _MAX_CENTS:
                raise ConfigurationError(
                    f"tiers: {tier.name}: expected cents between 0 and {_MAX_CENTS}, got {cents!r}"
                )

    def tier(self, name: str) -> Tier:
        """The tier called ``name``."""
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise KeyError(name)


# Where each key of the file goes: dotted key -> Policy field.
_KEYS: Final[dict[str, str]] = {
    "time_zone": "time_zone",
    "pension.rule_version": "pension_rule_version",
    "pension.cycle_months": "cycle_months",
    "pension.reminder_days": "reminder_days",
    "pension.confirmation_quiet_days": "confirmation_quiet_days",
    "pension.weak_events": "weak_events",
    "pension.weak_window_days": "weak_window_days",
    "pension.evidence_retention_days": "evidence_retention_days",
    "allowance.rule_version": "allowance_rule_version",
    "allowance.province_prefix": "province_prefix",
}
_FILE_KEYS: Final[dict[str, str]] = {field: key for key, field in _KEYS.items()}
_TABLES: Final = frozenset({"pension", "allowance", "allowance.monthly_amount_cents"})
_AMOUNTS: Final = "allowance.monthly_amount_cents"


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            if dotted not in _TABLES:
                raise ConfigurationError(f"unknown table [{dotted}]")
            flat.update(_flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def policy_from_mapping(table: dict[str, Any]) -> Policy:
    """A policy from a parsed policy file; missing keys keep their defaults."""
    values: dict[str, Any] = {}
    default = Policy()
    amounts = {tier.name: tier.monthly_amount_cents for tier in default.tiers}
    for key, value in _flatten(table).items():
        if key.startswith(f"{_AMOUNTS}."):
            name = key.removeprefix(f"{_AMOUNTS}.")
            if name not in amounts:
                raise ConfigurationError(f"{key}: unknown tier (expected one of {list(amounts)})")
            amounts[name] = value
            continue
        target = _KEYS.get(key)
        if target is None:
            raise ConfigurationError(f"{key}: unknown key (expected one of {sorted(_KEYS)})")
        expected = type(getattr(default, target))
        if type(value) is not expected:
            raise ConfigurationError(
                f"{key}: expected {expected.__name__}, got {type(value).__name__} {value!r}"
            )
        values[target] = value
    for name, cents in amounts.items():
        if type(cents) is not int:
            raise ConfigurationError(f"{_AMOUNTS}.{name}: expected int, got {cents!r}")
    values["tiers"] = tuple(Tier(name, TIER_AGES[name], amounts[name]) for name in TIER_AGES)
    try:
        return Policy(**values)
    except ConfigurationError as exc:
        # Name the key as the file spells it rather than the Policy field.
        name, _, message = str(exc).partition(": ")
        key = _FILE_KEYS.get(name, _AMOUNTS if name == "tiers" else name)
        raise ConfigurationError(f"{key}: {message}") from None


def load_policy(path: Path | None = None) -> Policy:
    """The policy in ``path``, or the packaged default ``policy.toml`` when it is None."""
    if path is None:
        source = "databus/rules/policy.toml"
        data = resources.files("databus.rules").joinpath("policy.toml").read_bytes()
    else:
        source = str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"{source}: cannot read the policy file: {exc}") from exc
    try:
        table = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"{source}: not a valid TOML file: {exc}") from exc
    try:
        return policy_from_mapping(table)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{source}: {exc}") from None
