"""Clock resets (docs/rules.md, "Clock resets"): one row per case.

A reset to day D says the bus is at D and withdraws every tick for a later day. Unless a
row says otherwise the pensioner's benefit started on 2024-06-01 (``qualified_until``
2025-06-01) and the resident was born on 1944-05-10 (80-89 from 2024-06, 90-99 from
2034-06, 100+ from 2044-06).
"""

from __future__ import annotations

import pytest

from databus.records import ElderlyAllowance
from databus.rules import Decision, PersonState, affected_by_reset, on_reset
from tests.unit.rules.builders import (
    POLICY,
    Step,
    Summary,
    certificate,
    confirmed,
    day,
    face,
    granted,
    household,
    pensioner,
    regranted,
    reminder,
    reset,
    resumed_retracted,
    rid,
    run,
    stopped,
    summaries,
    summary,
    suspended,
    tick,
    tier_back,
    tier_changed,
    withdraw,
)

P = pensioner(rid("p1"))
H = household(rid("h1"), "2020-01-01", born="1944-05-10")
BAD = tick("2099-01-01")
"""The mistyped ``databus clock tick --date 2099-01-01`` of the issue."""

CASES = [
    pytest.param(
        [P, H, tick("2025-03-01"), BAD, reset("2025-03-02")],
        [
            granted("80-89", "2025-03"),
            suspended("2099-01-01", "2025-06-01"),
            tier_changed("100+", "2099-01"),
            resumed_retracted("2025-03-02", "2025-06-01"),
            tier_back("80-89", "2099-01"),
        ],
        id="tick-in-2099-suspends-and-raises-the-tier-a-reset-withdraws-both",
    ),
    pytest.param(
        [P, tick("2025-05-20"), BAD, reset("2025-06-05"), tick("2025-06-06")],
        [
            reminder("2025-05-20", "2025-06-01"),
            suspended("2099-01-01", "2025-06-01"),
            resumed_retracted("2025-06-05", "2025-06-01"),
            suspended("2025-06-06", "2025-06-01"),
        ],
        id="overdue-at-the-reset-day-the-next-tick-suspends-with-its-own-day",
    ),
    pytest.param(
        [P, tick("2025-05-20"), reset("2025-04-01"), tick("2025-05-02"), tick("2025-06-01")],
        [reminder("2025-05-20", "2025-06-01")],
        id="a-reminder-already-sent-stands",
    ),
    pytest.param(
        [
            household(rid("h1"), "2020-01-01", born="1950-05-10"),
            tick("2025-03-01"),
            BAD,
            reset("2025-03-02"),
            tick("2030-06-01"),
        ],
        [
            granted("100+", "2099-01"),
            stopped("retracted", "100+", "2099-01"),
            granted("80-89", "2030-06"),
        ],
        id="allowance-granted-only-by-the-withdrawn-tick-is-stopped",
    ),
    pytest.param(
        [
            H,
            tick("2025-03-01"),
            tick("2035-01-01"),
            BAD,
            reset("2025-03-02"),
            tick("2034-06-01"),
        ],
        [
            granted("80-89", "2025-03"),
            tier_changed("90-99", "2035-01"),
            tier_changed("100+", "2099-01"),
            tier_back("80-89", "2035-01"),
            tier_changed("90-99", "2034-06"),
        ],
        id="two-withdrawn-tier-changes-go-back-from-the-first",
    ),
    pytest.param(
        [
            H,
            tick("2025-03-01"),
            BAD,
            d := certificate(rid("d1"), "2025-03-05", "2025-03-04"),
            reset("2025-03-06"),
            withdraw(d, "r1", "2025-03-10"),
        ],
        [
            granted("80-89", "2025-03"),
            tier_changed("100+", "2099-01"),
            stopped("deceased", "100+", "2025-04"),
            regranted("80-89", "2025-04"),
        ],
        id="allowance-stopped-since-the-withdrawn-tick-keeps-only-its-tier",
    ),
    pytest.param(
        [
            H,
            tick("2024-06-01"),
            household(rid("h2"), "2025-08-05", "moved_out", born="1944-05-10"),
            household(rid("h3"), "2025-08-20", "moved_in", born="1944-05-10"),
            tick("2025-09-15"),
            reset("2025-08-21"),
            tick("2025-08-22"),
        ],
        [
            granted("80-89", "2024-06"),
            stopped("moved_out", "80-89", "2025-09"),
            granted("80-89", "2025-09"),
            stopped("retracted", "80-89", "2025-09"),
            granted("80-89", "2025-09"),
        ],
        id="grant-after-moving-back-by-a-withdrawn-tick-is-stopped-and-made-again",
    ),
    pytest.param(
        [P, H, tick("2025-03-01"), BAD, reset("2025-03-02"), reset("2025-03-02")],
        [
            granted("80-89", "2025-03"),
            suspended("2099-01-01", "2025-06-01"),
            tier_changed("100+", "2099-01"),
            resumed_retracted("2025-03-02", "2025-06-01"),
            tier_back("80-89", "2099-01"),
        ],
        id="reset-applied-twice-decides-once",
    ),
    pytest.param(
        [P, H, tick("2025-03-01"), reset("2025-03-01")],
        [granted("80-89", "2025-03")],
        id="reset-to-the-last-tick-changes-nothing",
    ),
    pytest.param(
        [P, certificate(rid("d1"), "2025-03-05", "2025-03-04"), BAD, reset("2025-03-06")],
        [
            (
                "suspended",
                "deceased",
                day("2025-03-04"),
                day("2025-06-01"),
                ("d1",),
                day("2025-03-04"),
            )
        ],
        id="a-dead-pensioner-decides-nothing",
    ),
]


@pytest.mark.parametrize(("steps", "expected"), CASES)
def test_reset(steps: list[Step], expected: list[Summary]) -> None:
    assert summaries(steps) == expected


def test_the_2099_tick_reset_then_real_days_decide_as_if_it_never_came() -> None:
    """The issue's example end to end: after the reset, real evidence and ticks decide
    exactly what they decide on a bus that never saw the tick."""
    real: list[Step] = [
        face(rid("f1"), "2025-03-20"),
        tick("2025-03-21"),
        tick("2026-02-19"),
        tick("2026-03-21"),
        tick("2034-06-01"),
        tick("2044-06-01"),
    ]
    start: list[Step] = [P, H, tick("2025-03-01")]
    bad_state, bad = run([*start, BAD, reset("2025-03-02")])
    clean_state, clean = run(start)
    _, after_reset = run(real, state=bad_state)
    _, never = run(real, state=clean_state)
    assert (
        [summary(d) for d in after_reset]
        == [summary(d) for d in never]
        == [
            confirmed("2025-03-20", "2026-03-20", "f1"),
            reminder("2026-02-19", "2026-03-20"),
            suspended("2026-03-21", "2026-03-20"),
            tier_changed("90-99", "2034-06"),
            tier_changed("100+", "2044-06"),
        ]
    )
    # What a consumer pays, applying the decisions in order from their effective month.
    assert _paid([*clean, *never]) == _paid([*bad, *after_reset])
    # And none of the decisions made again is taken for one it saw before.
    ids = [d.id for d in (*bad, *after_reset)]
    assert len(ids) == len(set(ids))


def _paid(decisions: list[Decision]) -> dict[str, str | None]:
    """The tier paid in each month to 2099, applying allowance decisions in order."""
    allowance = [d.record for d in decisions if isinstance(d.record, ElderlyAllowance)]
    paid: dict[str, str | None] = {}
    for year in range(2025, 2100):
        for month in (f"{year}-{number:02d}" for number in range(1, 13)):
            in_force = [a for a in allowance if a.effective_month <= month]
            last = in_force[-1] if in_force else None
            paid[month] = None if last is None or last.decision == "stopped" else last.tier
    return paid


@pytest.mark.parametrize(
    ("steps", "as_of", "affected"),
    [
        pytest.param([P, H, tick("2025-03-01")], "2025-03-01", False, id="ticks-up-to-the-day"),
        pytest.param([P, BAD], "2025-03-01", True, id="suspended-by-a-later-tick"),
        pytest.param([H, BAD], "2098-12-31", True, id="tier-raised-by-a-later-tick"),
        pytest.param([P, BAD], "2099-01-01", False, id="reset-to-the-suspension-day"),
        pytest.param([], "2025-01-01", False, id="nobody"),
    ],
)
def test_affected_by_reset(steps: list[Step], as_of: str, affected: bool) -> None:
    state, _ = run(steps)
    assert affected_by_reset(state, day(as_of)) is affected
    if not affected:
        assert on_reset(state, day(as_of), POLICY) == (state, [])


def test_a_reset_state_round_trips() -> None:
    state, _ = run([P, H, tick("2025-03-01"), BAD, reset("2025-03-02")])
    assert state.epoch == 1
    assert PersonState.from_bytes(state.to_bytes()) == state
