"""Silent pension authentication (DOMAIN.md §1): one row per case.

Unless a row says otherwise the pensioner's benefit started on 2024-06-01, so the first
``qualified_until`` is 2025-06-01; events happen at 10:00 Shanghai time.
"""

from __future__ import annotations

import pytest

from databus.rules import PersonState, on_event
from tests.unit.rules.builders import (
    PERSON,
    POLICY,
    Step,
    Summary,
    certificate,
    confirmed,
    deceased,
    exam,
    face,
    funeral,
    household,
    pensioner,
    reminder,
    resumed,
    summaries,
    suspended,
    tap,
    tick,
    visit,
)

P = pensioner("p1")

CASES = [
    # confirmed / evidence: each kind of strong evidence
    pytest.param(
        [P, face("f1", "2025-01-10")],
        [confirmed("2025-01-10", "2026-01-10", "f1")],
        id="confirmed-face-authentication",
    ),
    pytest.param(
        [P, exam("e1", "2025-01-10")],
        [confirmed("2025-01-10", "2026-01-10", "e1")],
        id="confirmed-physical-exam",
    ),
    pytest.param(
        [P, visit("v1", "2025-01-10", verified=True)],
        [confirmed("2025-01-10", "2026-01-10", "v1")],
        id="confirmed-identity-verified-hospital-visit",
    ),
    pytest.param(
        [P, tap("t1", "2025-01-10", verified=True)],
        [confirmed("2025-01-10", "2026-01-10", "t1")],
        id="confirmed-identity-verified-rail-boarding",
    ),
    pytest.param(
        [P, visit("v1", "2025-01-10"), tap("t1", "2025-01-11")],
        [],
        id="weak-events-alone-do-not-qualify",
    ),
    # weak runs
    pytest.param(
        [P, tap("t1", "2025-01-01"), visit("v2", "2025-01-15"), tap("t3", "2025-01-30")],
        [confirmed("2025-01-30", "2026-01-30", "t1", "v2", "t3")],
        id="weak-triple-spanning-29-days-counts-on-its-latest-day",
    ),
    pytest.param(
        [P, tap("t1", "2025-01-01"), tap("t2", "2025-01-15"), tap("t3", "2025-01-31")],
        [confirmed("2025-01-31", "2026-01-31", "t1", "t2", "t3")],
        id="weak-triple-spanning-exactly-30-days-counts",
    ),
    pytest.param(
        [P, tap("t1", "2025-01-01"), tap("t2", "2025-01-15"), tap("t3", "2025-02-01")],
        [],
        id="weak-triple-spanning-31-days-does-not-count",
    ),
    pytest.param(
        [
            P,
            tap("t1", "2025-01-01T08:00+08:00"),
            tap("t2", "2025-01-01T18:00+08:00"),
            tap("t3", "2025-01-02"),
        ],
        [],
        id="three-weak-events-on-two-days-do-not-count",
    ),
    pytest.param(
        [
            P,
            tap("t1", "2025-01-01"),
            tap("t2", "2025-01-01T18:00+08:00"),
            tap("t3", "2025-01-02"),
            tap("t4", "2025-01-03"),
        ],
        [confirmed("2025-01-03", "2026-01-03", "t2", "t3", "t4")],
        id="weak-triple-uses-one-event-per-day",
    ),
    pytest.param(
        [P, tap("t3", "2025-01-30"), tap("t1", "2025-01-01"), tap("t2", "2025-01-15")],
        [confirmed("2025-01-30", "2026-01-30", "t1", "t2", "t3")],
        id="weak-triple-arriving-out-of-order",
    ),
    pytest.param(
        [
            P,
            tap("t1", "2025-01-01"),
            tap("t2", "2025-01-15"),
            tap("t3", "2025-01-30"),
            tap("t4", "2025-02-10"),
        ],
        [confirmed("2025-01-30", "2026-01-30", "t1", "t2", "t3")],
        id="weak-run-continuing-in-quiet-period-confirms-nothing-more",
    ),
    # time zone and calendar
    pytest.param(
        [P, face("f1", "2025-01-09T23:30:00+00:00")],
        [confirmed("2025-01-10", "2026-01-10", "f1")],
        id="event-at-2330-utc-is-next-day-in-shanghai",
    ),
    pytest.param(
        [pensioner("p1", "2023-05-20", benefit_start="2023-06-01"), face("f1", "2024-02-29")],
        [confirmed("2024-02-29", "2025-02-28", "f1")],
        id="evidence-on-29-february-qualifies-until-28-february",
    ),
    pytest.param(
        [
            pensioner("p1", "2024-02-01", benefit_start="2024-02-29"),
            tick("2025-01-29"),
            tick("2025-01-28"),
            tick("2025-02-28"),
            tick("2025-03-01"),
        ],
        [reminder("2025-01-29", "2025-02-28"), suspended("2025-03-01", "2025-02-28")],
        id="benefit-start-29-february-qualifies-until-28-february",
    ),
    # qualified_until never goes down
    pytest.param(
        [
            P,
            face("f1", "2025-03-01"),
            face("f0", "2024-12-01"),
            tick("2026-01-29"),
            tick("2026-01-30"),
        ],
        [confirmed("2025-03-01", "2026-03-01", "f1"), reminder("2026-01-30", "2026-03-01")],
        id="evidence-older-than-current-deadline-does-not-lower-it",
    ),
    pytest.param(
        [P, face("f0", "2024-05-01")],
        [],
        id="evidence-before-benefit-start-raises-nothing",
    ),
    # quiet period
    pytest.param(
        [P, face("f1", "2025-01-10"), face("f2", "2025-02-09"), face("f3", "2025-02-10")],
        [
            confirmed("2025-01-10", "2026-01-10", "f1"),
            confirmed("2025-02-10", "2026-02-10", "f3"),
        ],
        id="no-confirmed-within-30-days-of-previous-confirmed",
    ),
    pytest.param(
        [
            P,
            face("f1", "2025-01-10"),
            face("f2", "2025-02-09"),
            tick("2026-01-09"),
            tick("2026-01-10"),
        ],
        [confirmed("2025-01-10", "2026-01-10", "f1"), reminder("2026-01-10", "2026-02-09")],
        id="evidence-in-quiet-period-still-raises-qualified-until",
    ),
    # reminder
    pytest.param(
        [P, tick("2025-05-01"), tick("2025-05-02")],
        [reminder("2025-05-02", "2025-06-01")],
        id="reminder-from-30-days-before-deadline",
    ),
    pytest.param(
        [P, tick("2025-06-01")],
        [reminder("2025-06-01", "2025-06-01")],
        id="reminder-on-the-deadline",
    ),
    pytest.param(
        [P, tick("2025-05-02"), tick("2025-05-03"), tick("2025-06-01")],
        [reminder("2025-05-02", "2025-06-01")],
        id="reminder-once-per-qualified-until",
    ),
    pytest.param(
        [
            P,
            tick("2025-05-02"),
            face("f1", "2025-05-10"),
            tick("2026-04-09"),
            tick("2026-04-10"),
            tick("2026-04-11"),
        ],
        [
            reminder("2025-05-02", "2025-06-01"),
            confirmed("2025-05-10", "2026-05-10", "f1"),
            reminder("2026-04-10", "2026-05-10"),
        ],
        id="reminder-again-for-a-new-qualified-until",
    ),
    # suspended / no_evidence
    pytest.param(
        [P, tick("2025-06-02")],
        [suspended("2025-06-02", "2025-06-01")],
        id="suspended-after-deadline",
    ),
    pytest.param(
        [P, tick("2025-05-20"), tick("2025-06-02"), tick("2025-06-03")],
        [reminder("2025-05-20", "2025-06-01"), suspended("2025-06-02", "2025-06-01")],
        id="suspended-once",
    ),
    pytest.param(
        [pensioner("p1", "2024-05-20", benefit_start="2010-01-01"), tick("2025-06-02")],
        [suspended("2025-06-02", "2011-01-01")],
        id="deadline-already-past-when-tracking-starts",
    ),
    # resumed / evidence
    pytest.param(
        [P, tick("2025-06-02"), face("f1", "2025-06-10")],
        [suspended("2025-06-02", "2025-06-01"), resumed("2025-06-10", "2026-06-10", "f1")],
        id="resumed-after-suspended-no-evidence",
    ),
    pytest.param(
        [
            P,
            tick("2025-06-02"),
            tap("t1", "2025-06-03"),
            tap("t2", "2025-06-04"),
            tap("t3", "2025-06-05"),
        ],
        [
            suspended("2025-06-02", "2025-06-01"),
            resumed("2025-06-05", "2026-06-05", "t1", "t2", "t3"),
        ],
        id="resumed-by-weak-triple",
    ),
    pytest.param(
        [P, tick("2025-06-02"), face("f1", "2025-06-10"), face("f2", "2025-06-20")],
        [suspended("2025-06-02", "2025-06-01"), resumed("2025-06-10", "2026-06-10", "f1")],
        id="resumed-counts-as-confirmed-for-quiet-period",
    ),
    pytest.param(
        [P, tick("2025-06-02"), face("f0", "2024-06-05"), tick("2025-06-05"), tick("2025-06-06")],
        [
            suspended("2025-06-02", "2025-06-01"),
            resumed("2024-06-05", "2025-06-05", "f0"),
            reminder("2025-06-05", "2025-06-05"),
            suspended("2025-06-06", "2025-06-05"),
        ],
        id="late-evidence-covering-the-suspension-day-resumes",
    ),
    pytest.param(
        [P, tick("2025-07-01"), face("f0", "2024-06-15"), tick("2025-07-02")],
        [suspended("2025-07-01", "2025-06-01")],
        id="late-evidence-not-reaching-the-suspension-day-keeps-it",
    ),
    # suspended / deceased
    pytest.param(
        [P, certificate("d1", "2025-03-03", "2025-03-01"), tick("2025-06-02")],
        [deceased("2025-03-01", "2025-06-01", "d1")],
        id="deceased-by-death-certificate-is-final",
    ),
    pytest.param(
        [P, funeral("d1", "2025-03-05", "2025-03-01")],
        [deceased("2025-03-01", "2025-06-01", "d1")],
        id="deceased-by-funeral-record",
    ),
    pytest.param(
        [P, household("d1", "2025-03-05", "deregistered_death", date_of_death="2025-03-01")],
        [deceased("2025-03-01", "2025-06-01", "d1")],
        id="deceased-by-household-deregistration",
    ),
    pytest.param(
        [certificate("d1", "2025-03-03", "2025-03-01"), P],
        [deceased("2025-03-01", "2025-06-01", "d1")],
        id="pensioner-record-arriving-after-death",
    ),
    pytest.param(
        [
            P,
            certificate("d1", "2025-03-03", "2025-03-01"),
            funeral("d2", "2025-03-06", "2025-03-02"),
            pensioner("p2", "2025-03-07", account="PA-2"),
        ],
        [deceased("2025-03-01", "2025-06-01", "d1")],
        id="two-death-records-suspend-once-with-first-date",
    ),
    pytest.param(
        [
            funeral("d2", "2025-03-06", "2025-03-02"),
            certificate("d1", "2025-03-03", "2025-03-01"),
            P,
        ],
        [deceased("2025-03-02", "2025-06-01", "d2", "d1")],
        id="death-records-before-pensioner-record-are-all-cited",
    ),
    pytest.param(
        [
            P,
            certificate("d1", "2025-03-03", "2025-03-01"),
            face("f0", "2025-02-20"),
            tick("2025-06-02"),
        ],
        [deceased("2025-03-01", "2025-06-01", "d1")],
        id="evidence-before-death-arriving-after-it-confirms-nothing",
    ),
    # tracking
    pytest.param(
        [
            P,
            pensioner("p2", "2024-09-01", status="terminated"),
            tick("2025-06-02"),
            face("f1", "2025-07-01"),
        ],
        [],
        id="terminated-stops-tracking",
    ),
    pytest.param(
        [pensioner("p2", "2024-09-01", status="terminated"), P, tick("2025-06-02")],
        [],
        id="older-active-record-arriving-after-terminated-is-ignored",
    ),
    pytest.param(
        [
            P,
            pensioner("p2", "2024-09-01", status="terminated"),
            face("f1", "2025-01-10"),
            pensioner("p3", "2025-02-01"),
            tick("2026-01-11"),
        ],
        [
            confirmed("2025-01-10", "2026-01-10", "f1"),
            suspended("2026-01-11", "2026-01-10"),
        ],
        id="active-again-after-terminated-counts-evidence-seen-meanwhile",
    ),
    pytest.param(
        [face("f1", "2025-01-10"), P],
        [confirmed("2025-01-10", "2026-01-10", "f1")],
        id="evidence-before-pensioner-record-counts-when-it-arrives",
    ),
    pytest.param(
        [tap("t1", "2025-01-01"), tap("t2", "2025-01-05"), tap("t3", "2025-01-09"), P],
        [confirmed("2025-01-09", "2026-01-09", "t1", "t2", "t3")],
        id="weak-triple-before-pensioner-record-counts-when-it-arrives",
    ),
    pytest.param(
        [face("f1", "2025-01-10"), P, pensioner("p2", "2024-06-20", account="PA-2")],
        [confirmed("2025-01-10", "2026-01-10", "f1")],
        id="roster-update-decides-nothing",
    ),
    pytest.param(
        [face("f1", "2025-01-10"), tick("2026-01-11")],
        [],
        id="no-pension-decision-without-pensioner-record",
    ),
]


@pytest.mark.parametrize(("steps", "expected"), CASES)
def test_pension_rules(steps: list[Step], expected: list[Summary]) -> None:
    assert summaries(steps) == expected


def test_a_redelivered_forgotten_activity_raises_no_new_alert() -> None:
    """Found by the property 'applying the same event twice changes nothing' (CI, hypothesis):
    a face scan of 2 January is forgotten once one of 2 April is held (more than the
    90-day retention before it); the death of 1 January, arriving late, alerts the held
    2 April scan only. Redelivered, the 2 January scan must not raise an alert the first
    delivery never did."""
    steps = [
        pensioner("e0", "2024-01-01", benefit_start="2024-01-01"),
        face("e1", "2024-01-01"),
        face("e3", "2024-04-02"),
        face("e4", "2024-01-02"),
        certificate("e5", "2024-01-01", "2024-01-01"),
    ]
    state, seen = PersonState.empty(PERSON), set[str]()
    for step in steps:
        state, decisions = on_event(state, step, POLICY)
        seen |= {d.id for d in decisions}
    again, more = on_event(state, steps[3], POLICY)
    assert {d.id for d in more} <= seen
    assert again.death == state.death
