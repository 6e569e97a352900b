"""Old-age allowance (DOMAIN.md §2): one row per case.

Unless a row says otherwise the resident was born on 1945-05-10 (80 on 2025-05-10, so
the 80-89 tier applies from 2025-06) and registered in 370102 (Jinan, province 37).
"""

from __future__ import annotations

import pytest

from tests.unit.rules.builders import (
    Step,
    Summary,
    certificate,
    funeral,
    granted,
    household,
    run,
    stopped,
    summaries,
    tick,
    tier_changed,
)

H = household("h1", "2020-01-01")

CASES = [
    # granted / age
    pytest.param(
        [H, tick("2025-05-10"), tick("2025-05-31"), tick("2025-06-01")],
        [granted("80-89", "2025-06")],
        id="granted-first-tick-of-month-after-80th-birthday",
    ),
    pytest.param(
        [H, tick("2025-06-01"), tick("2025-06-02"), tick("2025-07-01")],
        [granted("80-89", "2025-06")],
        id="granted-once",
    ),
    pytest.param(
        [H, tick("2025-08-15")],
        [granted("80-89", "2025-08")],
        id="granted-from-month-of-a-late-tick",
    ),
    pytest.param(
        [household("h1", "2025-04-01", born="1930-03-01"), tick("2025-04-02")],
        [granted("90-99", "2025-04")],
        id="resident-first-seen-at-95-gets-highest-tier",
    ),
    pytest.param(
        [household("h1", "2025-04-01", born="1920-03-01"), tick("2025-04-02")],
        [granted("100+", "2025-04")],
        id="resident-first-seen-at-105",
    ),
    pytest.param(
        [household("h1", "2020-01-01", born="1946-01-01"), tick("2025-12-31")],
        [],
        id="no-allowance-under-80",
    ),
    # tier_changed / age
    pytest.param(
        [
            household("h1", "2020-01-01", born="1935-05-10"),
            tick("2025-05-01"),
            tick("2025-05-31"),
            tick("2025-06-01"),
        ],
        [granted("80-89", "2025-05"), tier_changed("90-99", "2025-06")],
        id="reaching-90",
    ),
    pytest.param(
        [
            household("h1", "2020-01-01", born="1925-05-10"),
            tick("2025-05-01"),
            tick("2025-06-01"),
            tick("2025-07-01"),
        ],
        [granted("90-99", "2025-05"), tier_changed("100+", "2025-06")],
        id="reaching-100",
    ),
    pytest.param(
        [
            household("h1", "2020-01-01", born="1936-02-29"),
            tick("2026-02-01"),
            tick("2026-02-28"),
            tick("2026-03-01"),
        ],
        [granted("80-89", "2026-02"), tier_changed("90-99", "2026-03")],
        id="birthday-29-february-reached-on-28-february",
    ),
    pytest.param(
        [household("h1", "2020-01-01", born="1944-02-29"), tick("2024-02-29"), tick("2024-03-01")],
        [granted("80-89", "2024-03")],
        id="birthday-29-february-in-a-leap-year",
    ),
    # residence
    pytest.param(
        [household("h1", "2020-01-01", region="110101"), tick("2025-06-01")],
        [],
        id="registered-outside-province-is-not-resident",
    ),
    pytest.param(
        [household("h1", "2020-01-01", "moved_in"), tick("2025-06-01")],
        [granted("80-89", "2025-06")],
        id="moved-in-is-resident",
    ),
    pytest.param(
        [tick("2025-06-01")],
        [],
        id="no-household-record-no-allowance",
    ),
    # stopped / moved_out
    pytest.param(
        [H, tick("2025-06-01"), household("h2", "2025-08-20", "moved_out"), tick("2025-09-01")],
        [granted("80-89", "2025-06"), stopped("moved_out", "80-89", "2025-09")],
        id="moved-out-stops-from-next-month",
    ),
    pytest.param(
        [
            H,
            tick("2025-06-01"),
            household("h2", "2025-08-20", "moved_out"),
            household("h3", "2025-10-05", "moved_in"),
            tick("2025-10-06"),
        ],
        [
            granted("80-89", "2025-06"),
            stopped("moved_out", "80-89", "2025-09"),
            granted("80-89", "2025-10"),
        ],
        id="moved-back-in-granted-at-next-tick",
    ),
    pytest.param(
        [
            H,
            tick("2025-06-01"),
            household("h2", "2025-08-05", "moved_out"),
            household("h3", "2025-08-20", "moved_in"),
            tick("2025-08-21"),
        ],
        [
            granted("80-89", "2025-06"),
            stopped("moved_out", "80-89", "2025-09"),
            granted("80-89", "2025-09"),
        ],
        id="moved-out-and-back-within-a-month-leaves-no-gap",
    ),
    pytest.param(
        [H, household("h2", "2025-03-01", "moved_out"), tick("2025-06-01")],
        [],
        id="moved-out-before-80-no-grant",
    ),
    pytest.param(
        [H, tick("2025-06-01"), household("h2", "2025-08-20", "updated", region="110101")],
        [granted("80-89", "2025-06"), stopped("moved_out", "80-89", "2025-09")],
        id="registered-outside-province-stops-like-moved-out",
    ),
    pytest.param(
        [H, tick("2025-06-01"), household("h2", "2025-08-20", "updated", region="370203")],
        [granted("80-89", "2025-06")],
        id="update-within-province-changes-nothing",
    ),
    pytest.param(
        [
            H,
            household("h3", "2025-08-20", "moved_out"),
            household("h2", "2025-07-01", "moved_in"),
            tick("2025-09-01"),
        ],
        [],
        id="older-moved-in-arriving-after-moved-out-is-ignored",
    ),
    pytest.param(
        [H, tick("2025-06-01"), household("h2", "2025-08-31T16:30:00+00:00", "moved_out")],
        [granted("80-89", "2025-06"), stopped("moved_out", "80-89", "2025-10")],
        id="moved-out-late-utc-counts-in-local-month",
    ),
    # stopped / deceased
    pytest.param(
        [H, tick("2025-06-01"), certificate("d1", "2025-09-20", "2025-09-15"), tick("2025-10-01")],
        [granted("80-89", "2025-06"), stopped("deceased", "80-89", "2025-10")],
        id="death-stops-from-month-after-death",
    ),
    pytest.param(
        [
            H,
            tick("2025-06-01"),
            funeral("d1", "2025-09-20", "2025-09-15"),
            certificate("d2", "2025-09-21", "2025-09-14"),
        ],
        [granted("80-89", "2025-06"), stopped("deceased", "80-89", "2025-10")],
        id="second-death-record-stops-nothing-more",
    ),
    pytest.param(
        [
            H,
            tick("2025-06-01"),
            household("d1", "2025-09-20", "deregistered_death", date_of_death="2025-09-15"),
        ],
        [granted("80-89", "2025-06"), stopped("deceased", "80-89", "2025-10")],
        id="household-deregistration-stops-as-deceased-not-moved-out",
    ),
    pytest.param(
        [H, certificate("d1", "2025-04-20", "2025-04-15"), tick("2025-06-01")],
        [],
        id="death-before-80-no-grant",
    ),
    pytest.param(
        [H, tick("2025-08-01"), certificate("d1", "2025-08-20", "2025-06-15")],
        [granted("80-89", "2025-08"), stopped("deceased", "80-89", "2025-07")],
        id="late-death-record-stops-from-month-after-death",
    ),
    pytest.param(
        [
            H,
            tick("2025-06-01"),
            household("h2", "2025-09-20", "moved_out"),
            certificate("d1", "2025-09-25", "2025-07-10"),
        ],
        [
            granted("80-89", "2025-06"),
            stopped("moved_out", "80-89", "2025-10"),
            stopped("deceased", "80-89", "2025-08"),
        ],
        id="death-before-a-recorded-move-out-still-stops-from-month-after-death",
    ),
    pytest.param(
        [
            H,
            tick("2025-06-01"),
            household("h2", "2025-07-20", "moved_out"),
            certificate("d1", "2025-09-25", "2025-09-10"),
        ],
        [granted("80-89", "2025-06"), stopped("moved_out", "80-89", "2025-08")],
        id="death-after-move-out-took-effect-decides-nothing",
    ),
    pytest.param(
        [
            H,
            tick("2025-06-01"),
            certificate("d1", "2025-09-20", "2025-09-15"),
            household("h2", "2025-08-20", "moved_out"),
        ],
        [
            granted("80-89", "2025-06"),
            stopped("deceased", "80-89", "2025-10"),
            stopped("moved_out", "80-89", "2025-09"),
        ],
        id="move-out-dated-before-a-known-death-stops-from-the-month-after-it",
    ),
    pytest.param(
        [
            H,
            tick("2025-06-01"),
            household("h2", "2025-08-20", "moved_out"),
            certificate("d1", "2025-09-25", "2025-09-10"),
            household("h3", "2025-10-01", "moved_in"),
            tick("2025-10-02"),
        ],
        [granted("80-89", "2025-06"), stopped("moved_out", "80-89", "2025-09")],
        id="dead-person-moving-in-is-not-granted",
    ),
]


@pytest.mark.parametrize(("steps", "expected"), CASES)
def test_allowance_rules(steps: list[Step], expected: list[Summary]) -> None:
    assert summaries(steps) == expected


def test_allowance_record_in_full() -> None:
    _, decisions = run([H, tick("2025-06-01")])
    assert decisions[0].dataset == "derived.elderly_allowance.v1"
    assert decisions[0].record.model_dump(mode="json") == {
        "person_ref": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "decision": "granted",
        "tier": "80-89",
        "monthly_amount_cents": 10000,
        "effective_month": "2025-06",
        "reason": "age",
        "rule_version": "allowance/1",
    }
