"""The policy file: packaged defaults, operators' files, and refusals that name the key."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from databus.errors import ConfigurationError
from databus.records.base import EARLIEST, LATEST
from databus.rules import Policy, Tier, load_policy, next_due, on_tick
from tests.unit.rules.builders import Step, face, household, pensioner, run, tick


def test_packaged_policy_is_the_default_of_domain_md() -> None:
    policy = load_policy()
    assert policy == Policy()
    assert (
        policy.time_zone,
        policy.cycle_months,
        policy.reminder_days,
        policy.confirmation_quiet_days,
        policy.weak_events,
        policy.weak_window_days,
        policy.evidence_retention_days,
        policy.province_prefix,
        policy.pension_rule_version,
        policy.allowance_rule_version,
    ) == ("Asia/Shanghai", 12, 30, 30, 3, 30, 90, "37", "pension/1", "allowance/1")
    assert policy.tiers == (
        Tier("80-89", 80, 10000),
        Tier("90-99", 90, 20000),
        Tier("100+", 100, 50000),
    )
    assert policy.zone.key == "Asia/Shanghai"


def test_packaged_policy_is_a_package_resource() -> None:
    text = resources.files("databus.rules").joinpath("policy.toml").read_text()
    assert 'rule_version = "pension/1"' in text


def test_operator_file_overrides_some_keys(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        'time_zone = "Asia/Urumqi"\n'
        "[pension]\n"
        'rule_version = "pension/2"\n'
        "reminder_days = 45\n"
        '[allowance.monthly_amount_cents]\n"100+" = 80000\n'
    )
    policy = load_policy(path)
    assert policy.time_zone == "Asia/Urumqi"
    assert policy.pension_rule_version == "pension/2"
    assert policy.reminder_days == 45
    assert policy.tier("100+").monthly_amount_cents == 80000
    assert policy.tier("80-89").monthly_amount_cents == 10000
    assert policy.cycle_months == 12


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("colour = 1\n", "colour: unknown key", id="unknown-key"),
        pytest.param(
            "[pension]\nreminder_dayz = 3\n", "pension.reminder_dayz: unknown key", id="typo"
        ),
        pytest.param("[pensions]\nx = 1\n", "unknown table [pensions]", id="unknown-table"),
        pytest.param(
            "[pension]\ncycle_months = 0\n",
            "pension.cycle_months: expected an integer from 1 to 120, got 0",
            id="zero",
        ),
        pytest.param(
            "[pension]\ncycle_months = 121\n",
            "pension.cycle_months: expected an integer from 1 to 120, got 121",
            id="cycle-over-ten-years",
        ),
        pytest.param(
            "[pension]\nreminder_days = 3661\n",
            "pension.reminder_days: expected an integer from 0 to 3660, got 3661",
            id="reminder-over-ten-years",
        ),
        pytest.param(
            "[pension]\nconfirmation_quiet_days = 100000\n",
            "pension.confirmation_quiet_days: expected an integer from 0 to 3660",
            id="quiet-period-over-ten-years",
        ),
        pytest.param(
            "[pension]\nweak_events = 101\n",
            "pension.weak_events: expected an integer from 1 to 100, got 101",
            id="too-many-weak-events",
        ),
        pytest.param(
            "[pension]\nweak_window_days = 3661\nevidence_retention_days = 3660\n",
            "pension.weak_window_days: expected an integer from 0 to 3660, got 3661",
            id="weak-window-over-ten-years",
        ),
        pytest.param(
            "[pension]\nevidence_retention_days = 9999999999\n",
            "pension.evidence_retention_days: expected an integer from 90 to 3660",
            id="retention-over-ten-years",
        ),
        pytest.param(
            "[pension]\nreminder_days = -1\n",
            "pension.reminder_days: expected an integer from 0 to 3660, got -1",
            id="negative-days",
        ),
        pytest.param(
            f'[allowance]\nrule_version = "{"v" * 65}"\n',
            "allowance.rule_version: expected a non-empty string of at most 64 characters",
            id="rule-version-too-long",
        ),
        pytest.param(
            '[pension]\ncycle_months = "12"\n',
            "pension.cycle_months: expected int, got str",
            id="str",
        ),
        pytest.param(
            "[pension]\nweak_events = true\n",
            "pension.weak_events: expected int, got bool",
            id="bool",
        ),
        pytest.param(
            "[pension]\nevidence_retention_days = 60\n",
            "pension.evidence_retention_days: expected an integer from 90 to 3660, got 60",
            id="retention-under-90",
        ),
        pytest.param('time_zone = "Mars/Olympus"\n', "time_zone: unknown time zone", id="zone"),
        pytest.param(
            '[allowance]\nprovince_prefix = "3A"\n',
            "allowance.province_prefix: expected 1-6 digits",
            id="prefix",
        ),
        pytest.param(
            '[allowance.monthly_amount_cents]\n"110+" = 1\n',
            "allowance.monthly_amount_cents.110+: unknown tier",
            id="unknown-tier",
        ),
        pytest.param(
            '[allowance.monthly_amount_cents]\n"80-89" = -1\n',
            "allowance.monthly_amount_cents: 80-89: expected cents",
            id="negative-amount",
        ),
        pytest.param(
            '[allowance.monthly_amount_cents]\n"80-89" = 10.5\n',
            "allowance.monthly_amount_cents.80-89: expected int",
            id="fractional-amount",
        ),
        pytest.param(
            '[pension]\nrule_version = ""\n',
            "pension.rule_version: expected a non-empty",
            id="empty",
        ),
        pytest.param("time_zone = \n", "not a valid TOML file", id="not-toml"),
    ],
)
def test_bad_policy_file_is_refused_naming_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError) as caught:
        load_policy(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_missing_policy_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read the policy file"):
        load_policy(tmp_path / "absent.toml")


def test_policy_built_in_code_is_checked_too() -> None:
    with pytest.raises(ConfigurationError, match="tiers: expected exactly"):
        Policy(tiers=(Tier("80-89", 80, 1),))
    with pytest.raises(ConfigurationError, match="evidence_retention_days: must be >= weak"):
        Policy(weak_window_days=120, evidence_retention_days=100)


def test_the_widest_policy_keeps_the_rules_inside_the_calendar() -> None:
    """Every bound at its limit, every date at the contract's edges: no date overflows."""
    widest = Policy(
        cycle_months=120,
        reminder_days=3660,
        confirmation_quiet_days=3660,
        weak_events=100,
        weak_window_days=3660,
        evidence_retention_days=3660,
    )
    late = f"{LATEST.isoformat()}T12:00:00+08:00"
    steps: list[Step] = [
        pensioner("p1", late, benefit_start=LATEST.isoformat()),
        household("h1", f"{EARLIEST.isoformat()}T12:00:00+08:00", born=EARLIEST.isoformat()),
        face("f1", late),
        tick(LATEST.isoformat()),
        tick(EARLIEST.isoformat()),
    ]
    state, _ = run(steps, widest)
    due = next_due(state, widest)
    assert due is not None
    on_tick(state, LATEST, widest)
